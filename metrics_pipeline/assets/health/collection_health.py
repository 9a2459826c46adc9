"""collection_health: per client, how collection is going, as the reliability roadmap asked:
successful and failed collections, missing dates, last and next run."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetPartitionStatus,
    MaterializeResult,
    MetadataValue,
    asset,
)

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.checks.completeness import completeness_by_client, completeness_pct
from metrics_pipeline.checks.report import markdown_table
from metrics_pipeline.checks.settings import CheckSettings
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.domain.periods import SETTLE_HOURS
from metrics_pipeline.meta.accounts import client_zones
from metrics_pipeline.steps.table_metadata import column_schema, row_count
from metrics_pipeline.warehouse.resource import WarehouseResource


def next_collection(moment: datetime, tz: str, settle_hours: int) -> datetime:
    """When the daily schedule next collects for a client: its next local settle hour."""
    local = moment.astimezone(ZoneInfo(tz))
    due = datetime.combine(local.date(), time(settle_hours), tzinfo=ZoneInfo(tz))
    if due <= local:
        due += timedelta(days=1)
    return due


def build_collection_health(catalog: Catalog):
    @asset(
        name="collection_health",
        group_name="health",
        metadata=column_schema("collection_health"),
        kinds={"python", "sql"},
        description="Per client: collected and failed days in the checked history, missing "
        "dates, completeness %, last collection and the next scheduled one.",
    )
    def collection_health(
        context: AssetExecutionContext,
        warehouse: WarehouseResource,
        clock: ClockResource,
        checks: CheckSettings,
    ) -> MaterializeResult:
        now = clock.now()
        zones = client_zones(catalog.clients, warehouse)
        # The completeness check's own count, so both report the same numbers.
        found = completeness_by_client(
            catalog.clients, warehouse, catalog.partitions.history_start, now, checks
        )
        gaps = {client_id: c.missing for client_id, c in found.items() if c.missing}
        statuses = (
            context.instance.get_status_by_partition(
                AssetKey("meta_insights"),
                [
                    k
                    for k in catalog.partitions.daily.get_partition_keys(current_time=now)
                    if str(k).split("|")[0] in gaps
                ],
                catalog.partitions.daily,
            )
            or {}
        )
        rows = []
        for client in catalog.clients:
            tz = zones.get(client.id)
            missing = gaps.get(client.id, [])
            failed = sorted(
                k.split("|")[1]
                for k, status in statuses.items()
                if status == AssetPartitionStatus.FAILED and k.split("|")[0] == client.id
            )
            collected = warehouse.read("meta_insight_collections", {"client_id": client.id})
            rows.append(
                {
                    "client_id": client.id,
                    "client_name": client.name,
                    "successful_days": len(collected),
                    "failed_days": len(failed),
                    "missing_days": len(missing),
                    "missing_dates": ",".join(str(d) for d in missing[:60]),
                    "completeness_pct": completeness_pct(
                        len(found[client.id].due), found[client.id].present
                    ),
                    "last_collected_at": collected["collected_at"].max()
                    if len(collected)
                    else None,
                    "next_collection_at": next_collection(now, tz, SETTLE_HOURS) if tz else None,
                    "updated_at": now,
                }
            )
        stored = warehouse.replace("collection_health", [{}], rows)
        return MaterializeResult(
            metadata={
                **row_count(stored),
                "clients": len(rows),
                "clients_with_gaps": sum(1 for r in rows if r["missing_days"]),
                "health": MetadataValue.md(
                    markdown_table(
                        [
                            {
                                k: r[k]
                                for k in (
                                    "client_id",
                                    "successful_days",
                                    "failed_days",
                                    "missing_days",
                                    "completeness_pct",
                                    "next_collection_at",
                                )
                            }
                            for r in rows
                        ]
                    )
                ),
            }
        )

    return collection_health
