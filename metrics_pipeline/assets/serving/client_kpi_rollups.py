"""client_kpi_rollups: month-to-date, trailing windows, previous month and pacing per client.

Every window is summed from daily_kpi_data by the same `summarize_windows_of_clients` as the
summaries. Trailing windows are complete days (today excluded); month-to-date runs to
yesterday, so its projection and pacing compare whole days with whole days.
"""

from datetime import timedelta

from dagster import AssetDep, AssetExecutionContext, MaterializeResult, asset

from metrics_pipeline.assets.serving.current_week_cache import ALL_DAYS_OF_CLIENT
from metrics_pipeline.catalog import Catalog
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.domain.kpis import PLATFORM
from metrics_pipeline.domain.pacing import pacing
from metrics_pipeline.domain.periods import Period, local_today, rollup_windows
from metrics_pipeline.domain.summaries import summarize_windows_of_clients
from metrics_pipeline.meta.accounts import client_timezone
from metrics_pipeline.steps.frames import DailyKpiFrameError, read_daily_kpis
from metrics_pipeline.steps.freshness import DAILY_FRESHNESS, REFRESH_WHEN_DAYS_CHANGE
from metrics_pipeline.steps.partial import end_if_stopped, finish
from metrics_pipeline.steps.table_metadata import column_schema, row_count
from metrics_pipeline.warehouse.resource import WarehouseResource


def build_client_kpi_rollups(catalog: Catalog, daily_kpi_data):
    @asset(
        name="client_kpi_rollups",
        partitions_def=catalog.partitions.clients,
        deps=[AssetDep(daily_kpi_data, partition_mapping=ALL_DAYS_OF_CLIENT)],
        group_name="serving",
        metadata=column_schema("client_kpi_rollups"),
        kinds={"pandas", "sql"},
        freshness_policy=DAILY_FRESHNESS,
        automation_condition=REFRESH_WHEN_DAYS_CHANGE,
        description="Per client: month-to-date, last 7/14/30 days, previous month, "
        "end-of-month projection and pacing against budget and conversion targets.",
    )
    def client_kpi_rollups(
        context: AssetExecutionContext, warehouse: WarehouseResource, clock: ClockResource
    ) -> MaterializeResult:
        now = clock.now()
        written: list[str] = []
        failures: list[str] = []
        rows_written = 0
        # Each client's rows are read and refused on their own, then all are summarised in
        # one grouped pass.
        today_by_client, windows_by_client, daily_by_client = {}, {}, {}
        for client_id in context.partition_keys:
            end_if_stopped(
                context,
                f"reading the rollups of client {client_id!r}",
                written,
                {"clients": len(written), **row_count(rows_written)},
            )
            today = local_today(now, client_timezone(catalog.client(client_id), warehouse))
            windows = rollup_windows(today)
            first = min(p.start for p in windows.values())
            try:
                daily_by_client[client_id] = read_daily_kpis(
                    warehouse, client_id, Period(first, today - timedelta(days=1)).days()
                )
            except DailyKpiFrameError as error:
                failures.append(f"{context.asset_key.to_user_string()}: {error}")
                continue
            today_by_client[client_id], windows_by_client[client_id] = today, windows
        summaries_by_client = summarize_windows_of_clients(daily_by_client, windows_by_client)
        for client_id, windows in windows_by_client.items():
            # One transaction per client: a stop between clients leaves each whole.
            end_if_stopped(
                context,
                f"writing the rollups of client {client_id!r}",
                written,
                {"clients": len(written), **row_count(rows_written)},
            )
            client, today = catalog.client(client_id), today_by_client[client_id]
            summaries = summaries_by_client[client_id]
            rows = []
            for name, period in windows.items():
                result = summaries[name]
                extra = (
                    pacing(
                        today,
                        result.totals,
                        client.monthly_budget,
                        client.targets.conversions,
                        client.targets.reservations,
                    )
                    if name == "month_to_date"
                    else {}
                )
                rows.append(
                    {
                        "client_id": client_id,
                        "platform": PLATFORM,
                        "rollup_window": name,
                        "as_of_date": today,
                        "window_start": period.start,
                        "window_end": period.end,
                        "days_with_data": result.days_with_data,
                        **result.totals,
                        "currency": result.currency,
                        **extra,
                        "updated_at": now,
                    }
                )
            rows_written += warehouse.replace(
                "client_kpi_rollups", [{"client_id": client_id}], rows
            )
            written.append(client_id)
        metadata = {"clients": len(written), **row_count(rows_written)}
        return finish(context, written, failures, metadata)

    return client_kpi_rollups
