"""Broken tracking and a spend spike planted in the sandbox are flagged through Dagster on
their client and days only, reach the webhook once each through the alert outbox, and the
break's end, a day later, sends one recovery. The same runs record the KPIs the UI plots:
each day's on its daily_kpi_data partition, the agency's on portfolio_kpis."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from statistics import median

import pytest
from dagster import AssetCheckKey, AssetKey, AssetRecordsFilter, build_sensor_context

from metrics_pipeline.automation.check_alerts import new_evaluations, outcome_of
from metrics_pipeline.automation.notifier import AlertNotifier
from metrics_pipeline.catalog import build_catalog
from metrics_pipeline.config.clients import load_clients
from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import run_stage
from metrics_pipeline.sandbox import plants
from metrics_pipeline.sandbox.ground_truth import day_truth
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline.sandbox.world import World
from metrics_pipeline_tests.conftest import BUNDLED_CLIENTS, NOW, make_instance, make_resources
from metrics_pipeline_tests.helpers import days_between
from metrics_pipeline_tests.receivers import webhook_receiver
from metrics_pipeline_tests.truth import expected_kpis, portfolio_truth

CANYON, ALTSTADT = "canyon_lodge", "altstadt_apartments"
BROKEN = [date(2026, 11, 15), date(2026, 11, 16), date(2026, 11, 17)]  # canyon's last 3 days
STILL_BROKEN = date(2026, 11, 18)  # canyon's today at NOW: collected only a day later
SPIKE = date(2026, 10, 29)  # altstadt spends ten times its usual
WINDOW = (date(2026, 10, 15), date(2026, 11, 17))  # 14 days before the spike
TRACKING = "daily_kpi_data:conversion_tracking"
ANOMALIES = "daily_kpi_data:kpi_anomalies"
CENT = Decimal("0.01")


def planted_world() -> World:
    world = World(anchor=NOW.date())
    plants.plant(world, plants.TrackingBreak("1000000002", BROKEN[0], STILL_BROKEN))
    plants.plant(world, plants.SpendSpike("1000000003", SPIKE, 10))
    return world


@pytest.fixture(scope="module")
def planted(catalog, tmp_path_factory):
    folder = tmp_path_factory.mktemp("kpi_watch")
    url = f"sqlite:///{folder / 'warehouse.sqlite'}"
    world = planted_world()
    with SandboxServer(world, now=NOW) as sandbox, make_instance(folder / "home") as instance:
        defs = build_definitions(catalog, make_resources(sandbox.url, url))
        # Only the layers the checks and the plots stand on, one run each: objects
        # (timezones), raw and daily days of every client, their rates, the portfolio.
        first, last = catalog.client_ids[0], catalog.client_ids[-1]
        for selection, first_key, last_key in (
            ([AssetKey("meta_ad_objects")], first, last),
            (
                [AssetKey("meta_insights"), AssetKey("daily_kpi_data")],
                f"{first}|{WINDOW[0]}",
                f"{last}|{WINDOW[1]}",
            ),
            ([AssetKey("fx_rates")], str(WINDOW[0]), str(WINDOW[1])),
            ([AssetKey("portfolio_kpis")], None, None),
        ):
            stage = run_stage(defs, instance, "setup", selection, first_key, last_key, {}, "ERROR")
            assert stage.success, selection
        found = {}
        for check in (TRACKING, ANOMALIES):
            key = AssetCheckKey(AssetKey("daily_kpi_data"), check.split(":")[1])
            found[check] = [outcome_of(e) for e in new_evaluations(instance, [key], {})[0]]
        yield world, sandbox, url, instance, found


def truth(world: World, account: str, day: date):
    return day_truth(world, f"act_{account}", day, 0, NOW.date())


def test_the_break_and_the_spike_are_flagged_on_their_client_and_days_only(planted, catalog):
    world, _, _, _, found = planted
    assert all(not o.passed for o in found[TRACKING] if CANYON in o.covered)
    tracking = [row for o in found[TRACKING] for row in o.offending]
    spend = sum((truth(world, "1000000002", d).spend for d in BROKEN), Decimal(0))
    assert len(tracking) == 1
    assert {k: tracking[0][k] for k in ("client", "date", "days", "spend", "reservations")} == {
        "client": CANYON,
        "date": "2026-11-15",
        "days": "2026-11-15..2026-11-17 (3)",
        "spend": str(spend),
        "reservations": 0,
    }
    # Every client of the demo was judged, each run's clients once.
    assert sorted(c for o in found[TRACKING] for c in o.covered) == sorted(catalog.client_ids)

    anomalies = [row for o in found[ANOMALIES] for row in o.offending]
    flagged = {(row["client"], row["date"].split(" ")[0]) for row in anomalies}
    assert flagged <= {(ALTSTADT, str(SPIKE))} | {(CANYON, str(d)) for d in BROKEN}
    (spike,) = [r for r in anomalies if r["date"] == f"{SPIKE} spend"]
    assert spike["value"] == str(truth(world, "1000000003", SPIKE).spend)
    # The band, worked out here: the median of the logs of the 14 days before x/÷
    # exp(10 x their median change from one day to the next).
    days = [SPIKE - timedelta(n) for n in range(14, 0, -1)]
    logs = [truth(world, "1000000003", d).spend.ln() for d in days]
    centre = Decimal(median(logs))
    change = Decimal(median([abs(b - a) for a, b in pairwise(logs)]))
    half = max(10 * change, Decimal("1.25").ln())
    bounds = [(centre - half).exp(), (centre + half).exp()]
    assert spike["band"] == "-".join(str(b.quantize(CENT, ROUND_HALF_UP)) for b in bounds)
    assert spike["currency"] == "EUR"


def tick(defs, instance, cursor, hook_url):
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources={"alerts": AlertNotifier(webhook_url=hook_url)}
    )
    return defs.resolve_sensor_def("check_alert_sensor").evaluate_tick(context).cursor


def test_each_alert_goes_out_once_and_the_break_ending_sends_a_recovery(planted, catalog):
    world, sandbox, url, instance, _ = planted
    defs = build_definitions(catalog, make_resources(sandbox.url, url))
    with webhook_receiver() as (hook_url, posts):
        cursor = tick(defs, instance, None, hook_url)
        cursor = tick(defs, instance, cursor, hook_url)  # nothing new: nothing sent again
        ours = [p["text"] for p in posts if TRACKING in p["text"] or ANOMALIES in p["text"]]
        assert len(ours) == 2, ours
        (broken,) = [t for t in ours if t.startswith(f"*Check failed: {TRACKING} (1 new)")]
        assert f"client {CANYON}, date 2026-11-15: currency=USD, " in broken
        assert "days=2026-11-15..2026-11-17 (3)" in broken and "reservations=0" in broken
        (spiked,) = [t for t in ours if t.startswith(f"*Check failed: {ANOMALIES}")]
        assert f"client {ALTSTADT}, date {SPIKE} spend: " in spiked
        assert f"value={truth(world, '1000000003', SPIKE).spend}" in spiked

        # A day later the break goes on: the same break, nothing new about it (the ROAS of
        # the new day is new). Two days later tracking is back: one recovery, nothing else.
        keys = [AssetKey("meta_insights"), AssetKey("daily_kpi_data")]
        sent = []
        for days_later in (1, 2):
            later = NOW + timedelta(days=days_later)
            sandbox.state.now = later
            defs = build_definitions(catalog, make_resources(sandbox.url, url, now=later))
            day = f"{CANYON}|{NOW.date() + timedelta(days=days_later - 1)}"
            assert run_stage(defs, instance, "day", keys, day, day, {}, "ERROR").success
            posts.clear()
            cursor = tick(defs, instance, cursor, hook_url)
            cursor = tick(defs, instance, cursor, hook_url)
            sent.append(
                [p["text"] for p in posts if TRACKING in p["text"] or ANOMALIES in p["text"]]
            )
        (roas,) = sent[0]
        assert roas.startswith(f"*Check failed: {ANOMALIES} (1 new)")
        assert f"client {CANYON}, date {STILL_BROKEN} roas: " in roas
        (recovered,) = sent[1]
        assert recovered.startswith(f"*Check recovered: {TRACKING} (1)")
        assert f"client {CANYON}, date 2026-11-15: " in recovered
        assert "days=2026-11-15..2026-11-17 (3)" in recovered  # as first sent


def latest_metadata(instance, asset: str, partition: str | None = None) -> dict:
    records = instance.fetch_materializations(
        AssetRecordsFilter(
            asset_key=AssetKey(asset), asset_partitions=[partition] if partition else None
        ),
        limit=1,
    ).records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def plotted(kpis: dict) -> dict:
    """The four plotted numbers of a row of expected KPIs; a NULL ratio is not recorded."""
    named = {
        "spend": kpis.get("total_spend", kpis.get("spend")),
        "reservations": kpis["reservations"],
        "roas": kpis["roas"],
        "cpa": kpis["average_cpa"],
    }
    return {k: (v if k == "reservations" else float(v)) for k, v in named.items() if v is not None}


def test_each_day_and_the_portfolio_record_the_kpis_the_ui_plots(planted, catalog):
    world, sandbox, _, instance, _ = planted
    for client, account, day in (
        (CANYON, "1000000002", BROKEN[1]),
        (ALTSTADT, "1000000003", SPIKE),
        ("sakura_ryokan", "1000000004", WINDOW[1]),
    ):
        metadata = latest_metadata(instance, "daily_kpi_data", f"{client}|{day}")
        want = plotted(expected_kpis(truth(world, account, day)))
        assert {k: metadata[k] for k in want} == want, (client, day)
    assert latest_metadata(instance, "daily_kpi_data", f"{CANYON}|{BROKEN[1]}")["reservations"] == 0

    expected = portfolio_truth(
        world,
        sandbox.state.ecb,
        {c.id: c.meta_ad_account_id.removeprefix("act_") for c in catalog.clients},
        {c.id: days_between(*WINDOW) for c in catalog.clients},
        NOW,
    )
    metadata = latest_metadata(instance, "portfolio_kpis")
    # The newest whole UTC day, the agency total, in EUR.
    assert metadata["day"] == "2026-11-17"
    want = plotted(expected[("day", date(2026, 11, 17), "*")])
    assert {k: metadata[k] for k in want} == want
    # The newest ISO week that ended, one line per client and the total last.
    monday = date(2026, 11, 9)
    assert metadata["latest_week_start"] == str(monday)
    table = [record.data for record in metadata["latest_week"].records]
    clients = sorted(catalog.client_ids)
    assert [row["client"] for row in table] == [*clients, "all clients"]
    for row, who in zip(table, [*clients, "*"], strict=True):
        assert {k: row[k] for k in ("spend", "reservations", "roas", "cpa")} == plotted(
            expected[("week", monday, who)]
        ), who


def test_a_client_switched_off_in_the_clients_file_is_skipped(planted, tmp_path):
    _, sandbox, url, instance, _ = planted
    text = BUNDLED_CLIENTS.read_text().replace(
        "    monthly_budget: 15000.00\n",
        "    monthly_budget: 15000.00\n    tracking:\n      enabled: false\n",
    )
    (tmp_path / "clients.yaml").write_text(text)
    switched = build_catalog(load_clients(tmp_path / "clients.yaml"))
    assert not switched.client(CANYON).tracking.enabled
    defs = build_definitions(switched, make_resources(sandbox.url, url))
    day = f"{CANYON}|{BROKEN[-1]}"
    keys = [AssetKey("daily_kpi_data")]
    assert run_stage(defs, instance, "switched", keys, day, day, {}, "ERROR").success
    key = AssetCheckKey(AssetKey("daily_kpi_data"), "conversion_tracking")
    record = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)[0]
    evaluation = record.event.dagster_event.event_specific_data
    assert evaluation.passed
    assert evaluation.metadata["skipped"].value == {CANYON: "switched off in the clients file"}
