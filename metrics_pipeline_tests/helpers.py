"""Helpers for reading what the pipeline stored and what the sandbox says is true."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

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


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def local_today(world: World, account_id: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(world.account(account_id).spec.timezone)).date()


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
