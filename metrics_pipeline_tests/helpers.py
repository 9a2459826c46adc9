"""Helpers for reading what the pipeline stored and what the sandbox says is true."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from dagster import AssetKey, Definitions, ExecuteInProcessResult

from metrics_pipeline.sandbox.world import World
from metrics_pipeline.warehouse.resource import WarehouseResource

TABLES = (
    "meta_ad_accounts",
    "meta_ad_objects",
    "meta_insights",
    "meta_insight_collections",
    "daily_kpi_data",
    "campaign_summaries",
    "current_week_cache",
    "client_kpi_rollups",
)


# The stored count columns of every KPI store today, in table order: written out here, not
# read from the registry, so tests of the registry and the schema have an independent oracle.
COUNTS = (
    "total_impressions",
    "total_clicks",
    "total_conversions",
    "click_to_call",
    "email_contacts",
    "booking_step_1",
    "booking_step_2",
    "booking_step_3",
    "reservations",
)


T = TypeVar("T")


def finish_within(seconds: float, work: Callable[[], T]) -> T:
    """`work()`'s result; a failure, not a hang, when a missing bound lets it run on."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds}s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def local_today(world: World, account_id: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(world.account(account_id).spec.timezone)).date()


# The calendar, written here on purpose rather than taken from the pipeline: a test that
# asked the pipeline where a week begins would agree with any mistake it makes.


def monday_of(day: date) -> date:
    """The first day of `day`'s ISO week."""
    return day - timedelta(days=day.weekday())


def month_bounds(day: date) -> tuple[date, date]:
    """The first and last day of `day`'s calendar month."""
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def previous_month_bounds(day: date) -> tuple[date, date]:
    return month_bounds(day.replace(day=1) - timedelta(days=1))


def rollup_windows(today: date) -> dict[str, tuple[date, date]]:
    """Month to date and the last 7/14/30 days end yesterday (whole days only)."""
    yesterday = today - timedelta(days=1)
    return {
        "month_to_date": (today.replace(day=1), yesterday),
        "last_7_days": (today - timedelta(days=7), yesterday),
        "last_14_days": (today - timedelta(days=14), yesterday),
        "last_30_days": (today - timedelta(days=30), yesterday),
        "previous_month": previous_month_bounds(today),
    }


def complete_weeks(first: date, now: datetime) -> list[date]:
    """Mondays of the ISO weeks from `first`'s week that ended (UTC midnight) by `now`."""
    mondays, monday = [], monday_of(first)
    while monday + timedelta(days=7) <= now.astimezone(UTC).date():
        mondays.append(monday)
        monday += timedelta(days=7)
    return mondays


def complete_months(first: date, now: datetime) -> list[date]:
    """First days of the months from `first`'s month that ended (UTC) by `now`."""
    firsts, start = [], first.replace(day=1)
    while month_bounds(start)[1] < now.astimezone(UTC).date():
        firsts.append(start)
        start = month_bounds(start)[1] + timedelta(days=1)
    return firsts


def snapshot(warehouse: WarehouseResource) -> dict[str, list[tuple]]:
    """Every table's rows, sorted, as comparable tuples."""
    result = {}
    for table in TABLES:
        frame = warehouse.read(table)
        rows = [tuple(str(v) for v in row) for row in frame.itertuples(index=False)]
        result[table] = sorted(rows)
    return result


def campaign_spend(campaign_data: str) -> dict[str, Decimal]:
    return {c["campaign_id"]: Decimal(c["total_spend"]) for c in json.loads(campaign_data)}


def materialization_metadata(result: ExecuteInProcessResult, key: AssetKey) -> list[dict]:
    """The metadata of each materialization of `key` in an in-process run."""
    return [
        event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key == key
    ]


def schema_and_rows(defs: Definitions, key: AssetKey, metadata: dict) -> tuple[list[str], int]:
    """The column names the asset's definition shows (`dagster/column_schema`) and the row
    count a materialization of it shows (`dagster/row_count`). The schema is not repeated
    on the materialization: a ranged run records one per partition."""
    assert "dagster/column_schema" not in metadata, "the schema belongs to the definition"
    schema = defs.get_assets_def(key).specs_by_key[key].metadata["dagster/column_schema"]
    return [c.name for c in schema.schema.columns], metadata["dagster/row_count"].value


def database_columns(url: str, table: str) -> list[str]:
    """The columns the database itself reports for `table`, in order."""
    engine = sa.create_engine(url)
    try:
        return [c["name"] for c in sa.inspect(engine).get_columns(table)]
    finally:
        engine.dispose()
