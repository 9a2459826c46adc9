"""Bad input from the API: refused for that client and day with a message naming the field
and value, or handled as the API means it; everything else is stored and correct."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from metrics_pipeline.catalog import build_catalog
from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import WindowError, materialize_window
from metrics_pipeline.sandbox.ground_truth import day_truth
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import NOW, make_resources
from metrics_pipeline_tests.helpers import days_between, local_today
from metrics_pipeline_tests.truth import normal_expected, stored_kpis

WINDOW = (NOW.date() - timedelta(days=4), NOW.date() - timedelta(days=2))
DAY = NOW.date() - timedelta(days=3)
ACCOUNT, CLIENT = "1000000003", "altstadt_apartments"


@pytest.fixture
def run(world, catalog, instance, tmp_path):
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    with SandboxServer(world, now=NOW) as sandbox:
        defs = build_definitions(catalog, make_resources(sandbox.url, url))

        def go(kind: str, day: str | None):
            sandbox.inject(kind, account=ACCOUNT, day=day, count=-1)
            return materialize_window(defs, catalog, instance, *WINDOW)

        yield go, WarehouseResource(url=url)


def _check_days(warehouse, world, catalog, skip: set[tuple[str, object]]) -> None:
    for client in catalog.clients:
        today = local_today(world, client.meta_ad_account_id, NOW)
        daily = warehouse.read("daily_kpi_data", {"client_id": client.id}, ["date"])
        expected_days = [d for d in days_between(*WINDOW) if (client.id, d) not in skip]
        assert list(daily["date"]) == expected_days, client.id
        insights = warehouse.read("meta_insights", {"client_id": client.id})
        assert len(insights) == sum(
            day_truth(world, client.meta_ad_account_id, d, 0, today).rows for d in expected_days
        )
        for row in daily.to_dict("records"):
            truth = day_truth(world, client.meta_ad_account_id, row["date"], 0, today)
            assert stored_kpis(row) == normal_expected(truth), (client.id, row["date"])


REFUSED = [
    ("missing_ad_id", "field 'ad_id', value None: missing"),
    ("empty_spend", "field 'spend', value '': not an amount: ''"),
    ("nan_impressions", "field 'impressions', value 'NaN': not a non-negative whole number"),
    ("negative_spend", "field 'spend', value '-"),
]


@pytest.mark.parametrize(("kind", "message"), REFUSED, ids=[k for k, _ in REFUSED])
def test_unreadable_values_refuse_that_client_and_day(kind, message, run, world, catalog):
    go, warehouse = run
    outcome = go(kind, DAY.isoformat())
    assert not outcome.success
    assert f"client '{CLIENT}', date {DAY}, {message}" in "\n".join(outcome.errors)
    _check_days(warehouse, world, catalog, skip={(CLIENT, DAY)})


HANDLED = ["unknown_action", "duplicate_rows", "out_of_range_date", "repeated_page"]


@pytest.mark.parametrize("kind", HANDLED)
def test_input_the_api_means_differently_is_handled_exactly(kind, run, world, catalog):
    go, warehouse = run
    outcome = go(kind, DAY.isoformat())
    assert outcome.success, outcome.errors
    _check_days(warehouse, world, catalog, skip=set())
    if kind == "unknown_action":  # kept in the raw rows, ignored by the KPIs
        raw = warehouse.read("meta_insights", {"client_id": CLIENT, "date": [DAY]})
        assert all("fb_pixel_custom_mystery" in text for text in raw["actions"])


def test_an_unknown_currency_refuses_that_client(run, world, catalog):
    go, warehouse = run
    outcome = go("unknown_currency", None)
    assert not outcome.success
    assert (
        f"client '{CLIENT}', field 'currency': ad account act_{ACCOUNT} reports unknown "
        "currency 'XYZ'"
    ) in "\n".join(outcome.errors)
    _check_days(warehouse, world, catalog, skip={(CLIENT, d) for d in days_between(*WINDOW)})


def test_requests_people_cannot_make(catalog, instance, now, tmp_path):
    # History from 2023 on, so the 37-month limit (not the history start) is what refuses.
    early = build_catalog(catalog.clients, history_start="2023-01-01")
    defs = build_definitions(
        early, make_resources("http://127.0.0.1:9", f"sqlite:///{tmp_path / 'w.sqlite'}")
    )
    old = now.date() - timedelta(days=38 * 31)
    for start, end, clients, message in (
        (old, old, None, "Meta does not serve data older than 37 months"),
        (date(2022, 12, 1), date(2022, 12, 2), None, "is before the history start 2023-01-01"),
        (now.date(), now.date() + timedelta(days=9), None, "is in the future"),
        (
            now.date() - timedelta(days=3),
            now.date() - timedelta(days=3),
            ["nobody"],
            "unknown client id(s) 'nobody'",
        ),
    ):
        with pytest.raises(WindowError) as error:
            materialize_window(defs, early, instance, start, end, clients)
        assert message in str(error.value)
    assert not instance.get_runs()  # refused before any run started


def test_deriving_the_stored_days_never_bypasses_the_raw_quality_check(
    world, catalog, instance, tmp_path
):
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    with SandboxServer(world, now=NOW) as sandbox:
        # One day fails to parse; another parses but breaks the raw quality rules.
        sandbox.inject("empty_spend", account=ACCOUNT, day=DAY.isoformat(), count=-1)
        sandbox.inject(
            "clicks_over_impressions", account=ACCOUNT, day=WINDOW[1].isoformat(), count=-1
        )
        defs = build_definitions(catalog, make_resources(sandbox.url, url))
        outcome = materialize_window(defs, catalog, instance, *WINDOW, client_ids=[CLIENT])
    assert not outcome.success
    follow_up = outcome.stages[-1]
    assert follow_up.stage == "daily_kpi_data (days that were stored)"
    assert follow_up.failed_steps == ["meta_insights_quality"]  # it ran again, and blocked
    assert WarehouseResource(url=url).read("daily_kpi_data", {"client_id": CLIENT}).empty
