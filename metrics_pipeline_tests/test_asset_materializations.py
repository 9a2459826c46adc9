"""One fast test per asset: `materialize()` one partition in a real instance against the
sandbox and a real warehouse, then compare what was stored, the column schema its
definition shows and the row count its materialization shows, with the sandbox's ground
truth.

The upstream days are materialised once for the module, as one ranged run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from dagster import AssetKey, DagsterInstance, Definitions, ExecuteInProcessResult, materialize

from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.partitions import RANGE_END, RANGE_START
from metrics_pipeline.sandbox.ground_truth import DayTruth, day_truth, period_truth
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline.sandbox.world import World
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import (
    NOW,
    make_instance,
    make_resources,
    postgres_schema_url,
)
from metrics_pipeline_tests.helpers import (
    database_columns,
    days_between,
    materialization_metadata,
    rollup_windows,
    schema_and_rows,
)
from metrics_pipeline_tests.truth import normal_expected, stored_kpis

CLIENT = "altstadt_apartments"
ACCOUNT = "act_1000000003"
# NOW is 21:00 on Wednesday 2026-11-18 in Berlin: the week began on Monday the 16th.
TODAY = date(2026, 11, 18)
FIRST = date(2026, 10, 1)  # the previous month's first day: every rollup window is inside
WEEK = date(2026, 11, 9)  # the last complete ISO week
MONTH = date(2026, 10, 1)  # the last complete month

# daily_kpi_data's columns as the README documents them, written out on purpose.
DAILY_KPI_COLUMNS = [
    "client_id", "date", "platform",
    "total_spend", "total_impressions", "total_clicks", "total_conversions",
    "average_ctr", "average_cpc",
    "click_to_call", "email_contacts", "booking_step_1", "booking_step_2", "booking_step_3",
    "reservations", "reservation_value", "roas", "cost_per_reservation", "average_cpa",
    "currency", "campaign_data", "data_source", "collected_at",
]  # fmt: skip


@dataclass
class Stack:
    world: World
    url: str
    defs: Definitions
    instance: DagsterInstance
    warehouse: WarehouseResource

    def run(self, key: AssetKey, partition: str | None = None) -> ExecuteInProcessResult:
        result = materialize(
            [*(self.defs.assets or [])],
            selection=[key],
            partition_key=partition,
            resources=self.defs.resources,
            instance=self.instance,
        )
        assert result.success
        return result

    def truth(self, days: list[date]) -> DayTruth:
        return period_truth(self.world, ACCOUNT, days, 0, TODAY)

    def shown(self, result: ExecuteInProcessResult, key: AssetKey, table: str) -> int:
        """The row count one materialization shows, after checking its column schema is the
        table's as the database reports it."""
        (metadata,) = materialization_metadata(result, key)
        columns, rows = schema_and_rows(self.defs, key, metadata)
        assert columns == database_columns(self.url, table)
        return rows


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request, catalog, world, tmp_path_factory) -> Iterator[Stack]:
    if request.param == "sqlite":
        database = nullcontext(f"sqlite:///{tmp_path_factory.mktemp('warehouse') / 'w.sqlite'}")
    else:
        database = contextmanager(postgres_schema_url)()
    with (
        database as url,
        SandboxServer(world, now=NOW) as sandbox,
        make_instance(tmp_path_factory.mktemp("dagster_home")) as instance,
    ):
        defs = build_definitions(catalog, make_resources(sandbox.url, url))
        upstream = materialize(
            [*(defs.assets or [])],
            selection=[AssetKey("meta_insights"), AssetKey("daily_kpi_data")],
            resources=defs.resources,
            instance=instance,
            tags={RANGE_START: f"{CLIENT}|{FIRST}", RANGE_END: f"{CLIENT}|{TODAY}"},
        )
        assert upstream.success
        yield Stack(world, url, defs, instance, WarehouseResource(url=url))


def test_meta_ad_objects_stores_every_object_of_the_account(stack: Stack):
    key = AssetKey("meta_ad_objects")
    result = stack.run(key, CLIENT)
    account = stack.world.account(ACCOUNT)
    expected = len(account.campaigns) + len(account.adsets) + len(account.ads)
    stored = stack.warehouse.read("meta_ad_objects", {"client_id": CLIENT})
    assert len(stored) == expected
    assert stack.shown(result, key, "meta_ad_objects") == expected


def test_meta_insights_stores_one_row_per_ad_and_country_of_the_day(stack: Stack):
    key, day = AssetKey("meta_insights"), TODAY - timedelta(days=1)
    result = stack.run(key, f"{CLIENT}|{day}")
    truth = day_truth(stack.world, ACCOUNT, day, 0, TODAY)
    stored = stack.warehouse.read("meta_insights", {"client_id": CLIENT, "date": day})
    assert len(stored) == truth.rows
    assert sum(stored["spend"]) == truth.spend
    assert stack.shown(result, key, "meta_insights") == truth.rows


def test_daily_kpi_data_stores_the_days_kpis(stack: Stack):
    key, day = AssetKey("daily_kpi_data"), TODAY - timedelta(days=2)
    result = stack.run(key, f"{CLIENT}|{day}")
    (row,) = stack.warehouse.read("daily_kpi_data", {"client_id": CLIENT, "date": day}).to_dict(
        "records"
    )
    assert stored_kpis(row) == normal_expected(stack.truth([day]))
    (metadata,) = materialization_metadata(result, key)
    assert schema_and_rows(stack.defs, key, metadata) == (DAILY_KPI_COLUMNS, 1)


def test_weekly_summary_sums_its_seven_days(stack: Stack):
    key = AssetKey(["campaign_summaries", "weekly"])
    result = stack.run(key, f"{CLIENT}|{WEEK}")
    (row,) = stack.warehouse.read(
        "campaign_summaries", {"client_id": CLIENT, "summary_type": "weekly"}
    ).to_dict("records")
    assert (row["summary_date"], row["days_with_data"]) == (WEEK, 7)
    week = days_between(WEEK, WEEK + timedelta(days=6))
    assert stored_kpis(row) == normal_expected(stack.truth(week))
    assert stack.shown(result, key, "campaign_summaries") == 1


def test_monthly_summary_sums_its_month(stack: Stack):
    key = AssetKey(["campaign_summaries", "monthly"])
    result = stack.run(key, f"{CLIENT}|{MONTH}")
    (row,) = stack.warehouse.read(
        "campaign_summaries", {"client_id": CLIENT, "summary_type": "monthly"}
    ).to_dict("records")
    assert (row["summary_date"], row["days_with_data"]) == (MONTH, 31)
    october = days_between(MONTH, date(2026, 10, 31))
    assert stored_kpis(row) == normal_expected(stack.truth(october))
    assert stack.shown(result, key, "campaign_summaries") == 1


def test_current_week_cache_holds_the_week_to_date_today_included(stack: Stack):
    key = AssetKey("current_week_cache")
    result = stack.run(key, CLIENT)
    (row,) = stack.warehouse.read("current_week_cache", {"client_id": CLIENT}).to_dict("records")
    assert (row["week_start"], row["days_with_data"], row["is_provisional"]) == (
        date(2026, 11, 16),
        3,
        True,
    )
    week_to_date = days_between(date(2026, 11, 16), TODAY)
    assert stored_kpis(row) == normal_expected(stack.truth(week_to_date))
    assert stack.shown(result, key, "current_week_cache") == 1


def test_client_kpi_rollups_hold_each_window(stack: Stack):
    key = AssetKey("client_kpi_rollups")
    result = stack.run(key, CLIENT)
    rows = stack.warehouse.read("client_kpi_rollups", {"client_id": CLIENT}).to_dict("records")
    windows = rollup_windows(TODAY)
    assert sorted(r["rollup_window"] for r in rows) == sorted(windows)
    for row in rows:
        first, last = windows[row["rollup_window"]]
        assert (row["window_start"], row["window_end"]) == (first, last)
        expected = normal_expected(stack.truth(days_between(first, last)))
        assert stored_kpis(row) == expected, row["rollup_window"]
    assert stack.shown(result, key, "client_kpi_rollups") == 5


def test_collection_health_has_a_row_per_client(stack: Stack, catalog):
    key = AssetKey("collection_health")
    result = stack.run(key)
    stored = stack.warehouse.read("collection_health")
    assert sorted(stored["client_id"]) == sorted(c.id for c in catalog.clients)
    assert stack.shown(result, key, "collection_health") == 4
