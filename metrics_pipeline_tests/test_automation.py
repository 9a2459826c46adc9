"""Schedules and sensors evaluated with Dagster's own helpers at chosen instants.

The demo clients live in Pacific/Auckland (UTC+13 in November), America/Los_Angeles
(UTC-8, read from the ad account), Europe/Berlin (UTC+1) and Asia/Tokyo (UTC+9).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from dagster import (
    AssetKey,
    AssetSelection,
    build_schedule_context,
    build_sensor_context,
    evaluate_automation_conditions,
)

from metrics_pipeline.automation.gaps import build_gap_sensor
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.partitions import RANGE_END, RANGE_START
from metrics_pipeline.runner import materialize_window, run_stage
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import NOW, make_resources
from metrics_pipeline_tests.helpers import days_between


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    warehouse = WarehouseResource(url=f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    warehouse.ensure_schema()  # a fresh warehouse, written outside any run
    # canyon_lodge's timezone is not configured: the schedules read what its account said.
    warehouse.replace(
        "meta_ad_accounts",
        [{"client_id": "canyon_lodge"}],
        [
            {
                "client_id": "canyon_lodge",
                "account_id": "1000000002",
                "name": "Canyon Lodge",
                "currency": "USD",
                "timezone": "America/Los_Angeles",
                "account_status": 1,
                "collected_at": NOW,
            }
        ],
    )
    return warehouse


@pytest.fixture
def defs(catalog, warehouse):
    return build_definitions(catalog, make_resources("http://127.0.0.1:9", warehouse.url))


def run_requests(defs, name: str, when: datetime, warehouse: WarehouseResource):
    schedule = defs.resolve_schedule_def(name)
    context = build_schedule_context(
        scheduled_execution_time=when,
        resources={"warehouse": warehouse, "clock": ClockResource()},
        repository_def=defs.get_repository_def(),
    )
    return schedule.evaluate_tick(context).run_requests or []


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # 12:05 UTC: 01:05 on the 21st in Auckland (not settled), 04:05 on the 20th in LA.
        (
            "2026-11-20T12:05:00+00:00",
            {
                "canyon_lodge|2026-11-19",
                "altstadt_apartments|2026-11-19",
                "sakura_ryokan|2026-11-19",
            },
        ),
        # 13:05 UTC: 02:05 in Auckland, which now collects its 20th, a day ahead of the others.
        (
            "2026-11-20T13:05:00+00:00",
            {
                "harbour_view_hotel|2026-11-20",
                "canyon_lodge|2026-11-19",
                "altstadt_apartments|2026-11-19",
                "sakura_ryokan|2026-11-19",
            },
        ),
        # 09:05 UTC: 01:05 in LA (its 19th not settled yet); 22:05 on the 20th in Auckland.
        (
            "2026-11-20T09:05:00+00:00",
            {
                "harbour_view_hotel|2026-11-19",
                "altstadt_apartments|2026-11-19",
                "sakura_ryokan|2026-11-19",
            },
        ),
    ],
)
def test_daily_collection_requests_each_clients_settled_yesterday(defs, warehouse, when, expected):
    requests = run_requests(
        defs, "daily_collection_schedule", datetime.fromisoformat(when), warehouse
    )
    assert {r.partition_key for r in requests} == expected
    # Run keys make each (client, day) one run however many hourly ticks see it.
    assert {r.run_key for r in requests} == {f"daily:{k.replace('|', ':')}" for k in expected}


# UTC offsets of the demo clients' local time in late November (no DST change then).
UTC_OFFSET_HOURS = {
    "harbour_view_hotel": 13,
    "canyon_lodge": -8,
    "altstadt_apartments": 1,
    "sakura_ryokan": 9,
}


def expected_lookback(when: datetime) -> dict[str, tuple[str, str]]:
    """Per client settled at `when` (2 h into its local day): the 28 days before its local
    yesterday, as the range tags of one run."""
    expected = {}
    for client_id, hours in UTC_OFFSET_HOURS.items():
        local = when + timedelta(hours=hours)
        if local.hour < 2:
            continue
        yesterday = local.date() - timedelta(days=1)
        first, last = yesterday - timedelta(days=28), yesterday - timedelta(days=1)
        expected[client_id] = (f"{client_id}|{first}", f"{client_id}|{last}")
    return expected


def lookback_by_client(requests) -> dict[str, tuple[str, str]]:
    by_client = {r.tags[RANGE_START].split("|")[0]: r for r in requests}
    assert len(by_client) == len(requests)  # one run per client
    assert all(r.partition_key is None for r in requests)  # a range, not 28 runs
    return {c: (r.tags[RANGE_START], r.tags[RANGE_END]) for c, r in by_client.items()}


def test_lookback_is_one_ranged_run_per_client(defs, warehouse):
    requests = run_requests(
        defs, "attribution_lookback_schedule", datetime(2026, 11, 20, 13, 35, tzinfo=UTC), warehouse
    )
    assert lookback_by_client(requests) == {
        "harbour_view_hotel": ("harbour_view_hotel|2026-10-23", "harbour_view_hotel|2026-11-19"),
        "canyon_lodge": ("canyon_lodge|2026-10-22", "canyon_lodge|2026-11-18"),
        "altstadt_apartments": ("altstadt_apartments|2026-10-22", "altstadt_apartments|2026-11-18"),
        "sakura_ryokan": ("sakura_ryokan|2026-10-22", "sakura_ryokan|2026-11-18"),
    }


def test_lookback_runs_again_each_day_and_once_within_a_day(defs, warehouse):
    # Run keys dedup runs forever: a key without the day would re-read once per client, ever.
    ticks = [
        datetime(2026, 11, 20, 13, 35, tzinfo=UTC),  # every client settled
        datetime(2026, 11, 20, 14, 35, tzinfo=UTC),  # an hour later: the same days
        datetime(2026, 11, 21, 13, 35, tzinfo=UTC),  # the next day
        datetime(2026, 11, 21, 11, 35, tzinfo=UTC),  # 00:35 in Auckland: not settled yet
    ]
    keys, ranges = [], []
    for tick in ticks:
        requests = run_requests(defs, "attribution_lookback_schedule", tick, warehouse)
        ranges.append(lookback_by_client(requests))
        keys.append({r.tags[RANGE_START].split("|")[0]: r.run_key for r in requests})
        assert ranges[-1] == expected_lookback(tick), tick
    assert "harbour_view_hotel" not in ranges[3] and len(ranges[3]) == 3
    assert ranges[1] == ranges[0] and keys[1] == keys[0]
    assert ranges[2] != ranges[0]
    for client_id in UTC_OFFSET_HOURS:
        assert keys[2][client_id] != keys[0][client_id], client_id
    assert len({*keys[0].values(), *keys[2].values()}) == 8
    # 11:35 UTC on the 21st is 00:35 on the 22nd in Auckland: no run for it yet. The others
    # already live the day of the 13:35 tick, so they get its very runs.
    assert keys[3] == {c: k for c, k in keys[2].items() if c != "harbour_view_hotel"}


def test_cache_refreshes_only_where_it_is_day(defs, warehouse):
    noon_utc = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    requests = run_requests(defs, "current_week_cache_schedule", noon_utc, warehouse)
    # 01:00 in Auckland and 04:00 in LA: asleep; 13:00 in Berlin and 21:00 in Tokyo: awake.
    assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in requests] == [
        ("altstadt_apartments", "sakura_ryokan")
    ]


def test_gap_sensor_requests_missing_days_at_most_n_at_a_time(
    catalog, world, instance, sandbox, warehouse
):
    defs = build_definitions(catalog, make_resources(sandbox.url, warehouse.url))
    # harbour_view_hotel has 3 of the last 5 settled days; nobody else has any.
    auckland_yesterday = (NOW + timedelta(hours=13)).date() - timedelta(days=1)
    if (NOW + timedelta(hours=13)).hour < 2:
        auckland_yesterday -= timedelta(days=1)
    have = (auckland_yesterday - timedelta(days=3), auckland_yesterday - timedelta(days=1))
    assert materialize_window(
        defs, catalog, instance, *have, client_ids=["harbour_view_hotel"]
    ).success
    sensor = build_gap_sensor(
        catalog,
        defs.resolve_job_def("collect_and_derive"),
        defs.resolve_job_def("exchange_rates"),
        history_days=5,
        max_partitions=4,
    )
    context = build_sensor_context(
        instance=instance,
        definitions=defs,
        resources={"warehouse": warehouse, "clock": defs.resources["clock"]},
    )
    requests = sensor.evaluate_tick(context).run_requests
    collections = [r for r in requests if r.job_name == "collect_and_derive"]
    ranges = [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in collections]
    first_missing = auckland_yesterday - timedelta(days=4)
    assert ranges[0] == (
        f"harbour_view_hotel|{first_missing}",
        f"harbour_view_hotel|{first_missing}",
    )
    assert ranges[1] == (
        f"harbour_view_hotel|{auckland_yesterday}",
        f"harbour_view_hotel|{auckland_yesterday}",
    )
    # The budget of 4 leaves 2 partitions for the next client, canyon_lodge's oldest days.
    client, start = ranges[2][0].split("|")
    _, end = ranges[2][1].split("|")
    assert client == "canyon_lodge" and len(ranges) == 3
    assert (
        len(days_between(datetime.fromisoformat(start).date(), datetime.fromisoformat(end).date()))
        == 2
    )
    # Exchange rates: every day from the earliest client's first due day through UTC
    # tomorrow, except the days the collection above already read them for.
    earliest_yesterday = min(
        (NOW + timedelta(hours=offset)).date()
        - timedelta(days=1 if (NOW + timedelta(hours=offset)).hour >= 2 else 2)
        for offset in (13, -8, 1, 9)  # Auckland, Los Angeles, Berlin, Tokyo in November
    )
    rates = [
        (r.tags[RANGE_START], r.tags[RANGE_END]) for r in requests if r.job_name == "exchange_rates"
    ]
    assert rates == [
        (str(earliest_yesterday - timedelta(days=4)), str(have[0] - timedelta(days=1))),
        (str(have[1] + timedelta(days=1)), str(NOW.date() + timedelta(days=1))),
    ]
    # Rates are asked for first, so the portfolio waits for them.
    assert requests[: len(rates)] == [r for r in requests if r.job_name == "exchange_rates"]


def test_the_shipped_gap_sensor_looks_back_90_settled_days(defs, instance, warehouse):
    """As built by the definitions a user gets (90 days, 60 partitions a tick), on an empty
    instance at NOW (20:00 UTC on 18 November): Auckland's yesterday is 18 November (09:00 on
    the 19th there), so its 90 days start on 21 August, and the tick's 60 partitions end on
    19 October. Los Angeles (12:00 on the 18th) looks back from the 17th: the rates start
    on 20 August, through UTC tomorrow."""
    auckland_first = date(2026, 11, 18) - timedelta(days=89)
    los_angeles_first = date(2026, 11, 17) - timedelta(days=89)
    assert (auckland_first, los_angeles_first) == (date(2026, 8, 21), date(2026, 8, 20))
    context = build_sensor_context(
        instance=instance,
        definitions=defs,
        resources={"warehouse": warehouse, "clock": defs.resources["clock"]},
    )
    tick = defs.resolve_sensor_def("gap_backfill_sensor").evaluate_tick(context)
    assert [(r.job_name, r.tags[RANGE_START], r.tags[RANGE_END]) for r in tick.run_requests] == [
        ("exchange_rates", "2026-08-20", "2026-11-19"),
        ("collect_and_derive", "harbour_view_hotel|2026-08-21", "harbour_view_hotel|2026-10-19"),
    ]


def test_a_change_that_lands_while_the_portfolio_rebuilds_is_not_forgotten(
    catalog, instance, sandbox, warehouse
):
    """The derived stores' condition, evaluated tick by tick (the portfolio stands for all):
    days that change after a rebuild was requested bring another rebuild, also when a
    materialisation of the store ends in the same tick (it may have read the days before
    they changed) and when they change right after the request."""
    defs = build_definitions(catalog, make_resources(sandbox.url, warehouse.url))
    portfolio = AssetKey("portfolio_kpis")
    day = NOW.date() - timedelta(days=2)

    def run(selection: list[AssetKey], first: str | None = None, last: str | None = None):
        assert run_stage(defs, instance, "test", selection, first, last, {}, "ERROR").success

    def collect(client_id: str) -> None:
        run(
            [AssetKey("meta_insights"), AssetKey("daily_kpi_data")],
            f"{client_id}|{day}",
            f"{client_id}|{day}",
        )

    cursor = None

    def requested() -> int:
        nonlocal cursor
        result = evaluate_automation_conditions(
            defs, instance, asset_selection=AssetSelection.assets(portfolio), cursor=cursor
        )
        cursor = result.cursor
        return result.get_num_requested(portfolio)

    run([AssetKey("meta_ad_objects")], catalog.client_ids[0], catalog.client_ids[-1])
    run([AssetKey("fx_rates")], str(day), str(day))
    assert requested() == 0  # the first evaluation
    collect("canyon_lodge")
    assert requested() == 1
    assert requested() == 0  # handled: requested, nothing changed since
    # A rebuild that began before another client's day landed ends after it.
    collect("sakura_ryokan")
    run([portfolio])
    assert requested() == 1
    # A day lands between the request and the next tick.
    collect("altstadt_apartments")
    assert requested() == 1
    assert requested() == 0


def test_exchange_rates_are_read_again_once_a_day_after_the_ecb_publishes(catalog, instance, defs):
    """fx_rates' condition at chosen instants: nothing before 16:30 in Berlin (15:30 UTC in
    November), then once the days from five before today through UTC tomorrow, once a day."""
    rates = AssetKey("fx_rates")
    cursor = None

    def requested_at(when: str) -> list[str]:
        nonlocal cursor
        result = evaluate_automation_conditions(
            defs,
            instance,
            asset_selection=AssetSelection.assets(rates),
            evaluation_time=datetime.fromisoformat(when),
            cursor=cursor,
        )
        cursor = result.cursor
        if not result.get_num_requested(rates):
            return []
        return sorted(str(key) for key in result.get_requested_partitions(rates))

    assert requested_at("2026-11-18T15:00:00+00:00") == []
    assert requested_at("2026-11-18T15:29:00+00:00") == []
    assert requested_at("2026-11-18T15:31:00+00:00") == [
        str(d) for d in days_between(datetime(2026, 11, 13).date(), datetime(2026, 11, 19).date())
    ]
    assert requested_at("2026-11-18T23:59:00+00:00") == []
    assert requested_at("2026-11-19T15:31:00+00:00") == [
        str(d) for d in days_between(datetime(2026, 11, 14).date(), datetime(2026, 11, 20).date())
    ]
