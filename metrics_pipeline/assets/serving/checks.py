"""Consistency and freshness of the stores derived from daily_kpi_data."""

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from dagster import AssetCheckExecutionContext, AssetCheckSeverity, MetadataValue, asset_check

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.checks import names
from metrics_pipeline.checks.consistency import daily_sums, mismatches
from metrics_pipeline.checks.pacing import client_pace
from metrics_pipeline.checks.report import result
from metrics_pipeline.checks.settings import CheckSettings
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.domain.periods import ROLLUP_WINDOWS
from metrics_pipeline.partitions import dates_by_client
from metrics_pipeline.warehouse.resource import WarehouseResource


def _label(client_id: str, item: str, start: date, end: date) -> dict[str, str]:
    """Names an offending row: (client, date) as the alerts track it, and the days summed."""
    return {"client": client_id, "date": item, "period": f"{start}..{end}"}


def _with_daily_sums(
    warehouse: WarehouseResource, table: str, clients: Sequence[str], start: str, end: str
) -> list[tuple[str, dict[str, Any], dict[str, Decimal]]]:
    """Each client's rows of `table`, with the database's sums of the client's daily rows
    over each row's days (its columns `start` to `end`)."""
    rows = {c: warehouse.read(table, {"client_id": c}).to_dict("records") for c in clients}
    sums = daily_sums(
        warehouse, ((c, row[start], row[end]) for c, records in rows.items() for row in records)
    )
    return [
        (c, row, sums[(c, row[start], row[end])]) for c, records in rows.items() for row in records
    ]


def _summary_check(catalog: Catalog, summary_asset, summary_type: str):

    @asset_check(
        asset=summary_asset,
        name=names.CONSISTENCY,
        blocking=True,
        description=f"Every {summary_type} summary equals the database's sum of its days in "
        "daily_kpi_data, to the cent.",
    )
    def summary_consistency(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
        offending, compared = [], 0
        covered = dates_by_client(context.partition_keys)
        stored_by_client = {
            client_id: warehouse.read(
                "campaign_summaries",
                {"client_id": client_id, "summary_type": summary_type, "summary_date": starts},
            )
            for client_id, starts in covered.items()
        }
        sums = daily_sums(
            warehouse,
            (
                (client_id, start, end)
                for client_id, stored in stored_by_client.items()
                for start, end in zip(stored["summary_date"], stored["period_end"], strict=True)
            ),
        )
        for client_id, starts in covered.items():
            stored = stored_by_client[client_id]
            missing = set(starts) - set(stored["summary_date"])
            offending += [
                {
                    "client": client_id,
                    "date": str(d),
                    "column": "(row)",
                    "stored": "missing",
                    "sum_of_days": "-",
                }
                for d in sorted(missing)
            ]
            for row in stored.to_dict("records"):
                compared += 1
                expected = sums[(client_id, row["summary_date"], row["period_end"])]
                offending += mismatches(
                    row,
                    expected,
                    _label(
                        client_id, str(row["summary_date"]), row["summary_date"], row["period_end"]
                    ),
                )
        return result(not offending, offending, covered=covered, summaries_compared=compared)

    return summary_consistency


def build_serving_checks(catalog: Catalog, weekly, monthly, cache, rollups) -> list:
    @asset_check(
        asset=cache,
        name=names.CONSISTENCY,
        blocking=True,
        description="The cache equals the database's sum of the week-to-date daily rows.",
    )
    def cache_consistency(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
        offending = []
        for client_id, row, expected in _with_daily_sums(
            warehouse,
            "current_week_cache",
            context.partition_keys,
            "date_range_start",
            "date_range_end",
        ):
            offending += mismatches(
                row,
                expected,
                _label(client_id, "cache", row["date_range_start"], row["date_range_end"]),
            )
        covered = {c: ["cache"] for c in context.partition_keys}
        return result(not offending, offending, covered=covered, clients_compared=len(covered))

    @asset_check(
        asset=cache,
        name=names.FRESHNESS,
        description="Every client's cache was refreshed within the allowed minutes.",
    )
    def cache_freshness(warehouse: WarehouseResource, clock: ClockResource, checks: CheckSettings):
        now = clock.now()
        limit = timedelta(minutes=checks.cache_max_age_minutes)
        stale = []
        covered = {c.id: ["cache"] for c in catalog.clients}
        for client in catalog.clients:
            updated = warehouse.latest(
                "current_week_cache", "last_updated", {"client_id": client.id}
            )
            if updated is not None and updated.tzinfo is None:
                updated = updated.replace(tzinfo=now.tzinfo)
            if updated is None or now - updated > limit:
                stale.append({"client": client.id, "date": "cache", "last_updated": str(updated)})
        return result(
            not stale, stale, covered=covered, max_age_minutes=checks.cache_max_age_minutes
        )

    @asset_check(
        asset=rollups,
        name=names.CONSISTENCY,
        blocking=True,
        description="Every rollup window equals the database's sum of its daily rows.",
    )
    def rollups_consistency(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
        offending = []
        for client_id, row, expected in _with_daily_sums(
            warehouse, "client_kpi_rollups", context.partition_keys, "window_start", "window_end"
        ):
            offending += mismatches(
                row,
                expected,
                _label(client_id, row["rollup_window"], row["window_start"], row["window_end"]),
            )
        covered = {c: list(ROLLUP_WINDOWS) for c in context.partition_keys}
        return result(not offending, offending, covered=covered, clients_compared=len(covered))

    @asset_check(
        asset=rollups,
        name=names.PACING,
        description="Month to date, per client: projected month-end spend inside the band of "
        "the monthly budget (default 70-115 %), projected reservations and conversions at "
        "least a share of their targets (default 90 %). Clients without a budget or target "
        "are skipped for it.",
    )
    def rollups_pacing(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
        offending, covered, skipped = [], {}, {}
        for client_id in context.partition_keys:
            client = catalog.client(client_id)
            rows = warehouse.read(
                "client_kpi_rollups", {"client_id": client_id, "rollup_window": "month_to_date"}
            ).to_dict("records")
            if not rows:
                skipped[client_id] = ["no month_to_date row"]
                continue
            row = rows[0]
            month = row["as_of_date"].strftime("%Y-%m")
            off, judged, reasons = client_pace(client, row)
            # One alert per client, month and condition: the condition is in the "date".
            covered[client_id] = [f"{month} {condition}" for condition in judged]
            if reasons:
                skipped[client_id] = reasons
            offending += [
                {
                    "client": client_id,
                    "date": f"{month} {o.condition}",
                    "projected": str(o.projected),
                    "limit": o.limit,
                    "currency": row["currency"],
                    "days_left": o.days_left,
                }
                for o in off
            ]
        return result(
            not offending,
            offending,
            covered=covered,
            severity=AssetCheckSeverity.WARN,
            skipped=MetadataValue.json(skipped),
        )

    return [
        rollups_pacing,
        _summary_check(catalog, weekly, "weekly"),
        _summary_check(catalog, monthly, "monthly"),
        cache_consistency,
        cache_freshness,
        rollups_consistency,
    ]
