"""Schedules and sensors evaluated with Dagster's own helpers at chosen instants.

The demo clients live in Pacific/Auckland (UTC+13 in November), America/Los_Angeles
(UTC-8, read from the ad account), Europe/Berlin (UTC+1) and Asia/Tokyo (UTC+9).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dagster import build_schedule_context, build_sensor_context

from metrics_pipeline.automation.gaps import build_gap_sensor
from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import RANGE_END, RANGE_START, materialize_window
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import NOW, make_resources
from metrics_pipeline_tests.helpers import days_between


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    warehouse = WarehouseResource(url=f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
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
        resources={"warehouse": warehouse},
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


def test_lookback_is_one_ranged_run_per_client(defs, warehouse):
    requests = run_requests(
        defs, "attribution_lookback_schedule", datetime(2026, 11, 20, 13, 35, tzinfo=UTC), warehouse
    )
    ranges = {(r.tags[RANGE_START], r.tags[RANGE_END]) for r in requests}
    assert ranges == {
        ("harbour_view_hotel|2026-10-23", "harbour_view_hotel|2026-11-19"),
        ("canyon_lodge|2026-10-22", "canyon_lodge|2026-11-18"),
        ("altstadt_apartments|2026-10-22", "altstadt_apartments|2026-11-18"),
        ("sakura_ryokan|2026-10-22", "sakura_ryokan|2026-11-18"),
    }
    assert all(r.partition_key is None for r in requests)  # ranges, not 28 runs


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
        catalog, defs.resolve_job_def("collect_job"), history_days=5, max_partitions=4
    )
    context = build_sensor_context(
        instance=instance,
        definitions=defs,
        resources={"warehouse": warehouse, "clock": defs.resources["clock"]},
    )
    requests = sensor.evaluate_tick(context).run_requests
    ranges = [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in requests]
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
