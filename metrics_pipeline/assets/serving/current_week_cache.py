"""current_week_cache: each client's week-to-date, the view dashboards read.

Derived only from daily_kpi_data for the client's current ISO week, today included; today's
numbers are still moving, so a cache that includes them is marked provisional.
"""

from dagster import (
    AssetDep,
    AssetExecutionContext,
    MaterializeResult,
    MultiToSingleDimensionPartitionMapping,
    asset,
)

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.domain.kpis import PLATFORM
from metrics_pipeline.domain.periods import Period, local_today, week_start
from metrics_pipeline.domain.summaries import summarize_windows_of_clients
from metrics_pipeline.meta.accounts import client_timezone
from metrics_pipeline.partitions import CLIENT
from metrics_pipeline.steps.frames import DailyKpiFrameError, read_daily_kpis
from metrics_pipeline.steps.freshness import CACHE_FRESHNESS, REFRESH_WHEN_DAYS_CHANGE
from metrics_pipeline.steps.partial import end_if_stopped, finish
from metrics_pipeline.steps.table_metadata import column_schema, row_count
from metrics_pipeline.warehouse.resource import WarehouseResource

ALL_DAYS_OF_CLIENT = MultiToSingleDimensionPartitionMapping(partition_dimension_name=CLIENT)


def build_current_week_cache(catalog: Catalog, daily_kpi_data):
    @asset(
        name="current_week_cache",
        partitions_def=catalog.partitions.clients,
        deps=[AssetDep(daily_kpi_data, partition_mapping=ALL_DAYS_OF_CLIENT)],
        group_name="serving",
        metadata=column_schema("current_week_cache"),
        kinds={"pandas", "sql"},
        freshness_policy=CACHE_FRESHNESS,
        automation_condition=REFRESH_WHEN_DAYS_CHANGE,
        description="Week-to-date stats, conversion metrics and per-campaign rows per client, "
        "today included and marked provisional.",
    )
    def current_week_cache(
        context: AssetExecutionContext, warehouse: WarehouseResource, clock: ClockResource
    ) -> MaterializeResult:
        now = clock.now()
        written: list[str] = []
        failures: list[str] = []
        rows_written = 0
        # Each client's rows are read and refused on their own, then all are summarised in
        # one grouped pass.
        weeks, daily_by_client = {}, {}
        for client_id in context.partition_keys:
            end_if_stopped(
                context,
                f"reading the week-to-date cache of client {client_id!r}",
                written,
                {"clients": len(written), **row_count(rows_written)},
            )
            today = local_today(now, client_timezone(catalog.client(client_id), warehouse))
            week = Period(week_start(today), today)
            try:
                daily_by_client[client_id] = read_daily_kpis(warehouse, client_id, week.days())
            except DailyKpiFrameError as error:
                failures.append(f"{context.asset_key.to_user_string()}: {error}")
                continue
            weeks[client_id] = week
        summaries = summarize_windows_of_clients(
            daily_by_client, {client_id: {week.start: week} for client_id, week in weeks.items()}
        )
        for client_id, week in weeks.items():
            # One transaction per client: a stop between clients leaves each whole.
            end_if_stopped(
                context,
                f"writing the week-to-date cache of client {client_id!r}",
                written,
                {"clients": len(written), **row_count(rows_written)},
            )
            start, today, daily = week.start, week.end, daily_by_client[client_id]
            result = summaries[client_id][week.start]
            includes_today = bool((daily["date"] == today).any()) if not daily.empty else False
            rows_written += warehouse.replace(
                "current_week_cache",
                [{"client_id": client_id}],
                [
                    {
                        "client_id": client_id,
                        "platform": PLATFORM,
                        "week_start": start,
                        "date_range_start": start,
                        "date_range_end": today,
                        "days_with_data": result.days_with_data,
                        "is_provisional": includes_today,
                        "provisional_date": today if includes_today else None,
                        **result.totals,
                        "currency": result.currency,
                        "campaign_data": result.campaign_data,
                        "last_updated": now,
                    }
                ],
            )
            written.append(client_id)
        metadata = {"clients": len(written), **row_count(rows_written)}
        return finish(context, written, failures, metadata)

    return current_week_cache
