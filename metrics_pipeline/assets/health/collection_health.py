"""collection_health: per client, how collection is going, as the reliability roadmap asked:
successful and failed collections, missing dates, last and next run."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset
from dagster._core.storage.partition_status_cache import AssetPartitionStatus

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.checks.due import due_days
from metrics_pipeline.checks.report import markdown_table
from metrics_pipeline.checks.settings import CheckSettings
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.domain.periods import SETTLE_HOURS
from metrics_pipeline.meta.accounts import client_zones
from metrics_pipeline.steps.table_metadata import table_metadata
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
        materialized = {
            str(k) for k in context.instance.get_materialized_partitions(AssetKey("daily_kpi_data"))
        }
        # The same window as the completeness check, so both report the same numbers.
        due = {
            client_id: due_days(catalog.partitions.history_start, now, tz, checks)
            for client_id, tz in zones.items()
        }
        gaps = {
            client_id: missing
            for client_id, days in due.items()
            if (missing := [d for d in days if f"{client_id}|{d}" not in materialized])
        }
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
            window = len(due.get(client.id, [])) or 1
            rows.append(
                {
                    "client_id": client.id,
                    "client_name": client.name,
                    "successful_days": len(collected),
                    "failed_days": len(failed),
                    "missing_days": len(missing),
                    "missing_dates": ",".join(str(d) for d in missing[:60]),
                    "completeness_pct": round(100.0 * (window - len(missing)) / window, 2),
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
                **table_metadata("collection_health", stored),
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
