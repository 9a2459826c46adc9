"""campaign_summaries: weekly (ISO, Monday start) and monthly summaries per client.

Derived only from daily_kpi_data; Dagster maps each week or month partition to its days.
Both assets write the one `campaign_summaries` table, each its own `summary_type`.
"""

from collections.abc import Callable
from datetime import date

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    DimensionPartitionMapping,
    IdentityPartitionMapping,
    MaterializeResult,
    MultiPartitionMapping,
    TimeWindowPartitionMapping,
    asset,
)

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.domain.kpis import PLATFORM
from metrics_pipeline.domain.periods import Period, month_of, week_of
from metrics_pipeline.domain.summaries import summarize_windows_of_clients
from metrics_pipeline.partitions import CLIENT, DATE, dates_by_client
from metrics_pipeline.steps.frames import DailyKpiFrameError, read_daily_kpis
from metrics_pipeline.steps.freshness import (
    MONTHLY_FRESHNESS,
    REFRESH_WHEN_DAYS_CHANGE,
    WEEKLY_FRESHNESS,
)
from metrics_pipeline.steps.partial import end_if_stopped, finish
from metrics_pipeline.steps.table_metadata import column_schema, row_count
from metrics_pipeline.warehouse.resource import WarehouseResource

DAYS_OF_PERIOD = MultiPartitionMapping(
    {
        DATE: DimensionPartitionMapping(DATE, TimeWindowPartitionMapping()),
        CLIENT: DimensionPartitionMapping(CLIENT, IdentityPartitionMapping()),
    }
)


def _build_summary(
    catalog: Catalog, daily_kpi_data, summary_type: str, period_of: Callable[[date], Period]
):
    partitions = (
        catalog.partitions.weekly if summary_type == "weekly" else (catalog.partitions.monthly)
    )

    @asset(
        key=AssetKey(["campaign_summaries", summary_type]),
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.single_run(),
        deps=[AssetDep(daily_kpi_data, partition_mapping=DAYS_OF_PERIOD)],
        group_name="kpis",
        metadata=column_schema("campaign_summaries"),
        kinds={"pandas", "sql"},
        freshness_policy=WEEKLY_FRESHNESS if summary_type == "weekly" else MONTHLY_FRESHNESS,
        automation_condition=REFRESH_WHEN_DAYS_CHANGE,
        description=f"{summary_type.capitalize()} totals, conversion metrics, average CPA and "
        "per-campaign totals per client, summed from daily_kpi_data.",
    )
    def summary(
        context: AssetExecutionContext, warehouse: WarehouseResource, clock: ClockResource
    ) -> MaterializeResult:
        now = clock.now()
        rows_written = 0
        written: list[tuple[str, date]] = []
        failures: list[str] = []
        # Each client's rows are read and refused on their own (one client's bad day holds
        # back only that client), then all are summarised in one grouped pass.
        periods_by_client: dict[str, list[Period]] = {}
        daily_by_client = {}
        for client_id, starts in dates_by_client(context.partition_keys).items():
            end_if_stopped(
                context,
                f"summing {summary_type} summaries of client {client_id!r}",
                written,
                {"summaries": rows_written, **row_count(rows_written)},
            )
            periods = [period_of(start) for start in starts]
            try:
                daily_by_client[client_id] = read_daily_kpis(
                    warehouse, client_id, [d for p in periods for d in p.days()]
                )
            except DailyKpiFrameError as error:
                failures.append(f"{context.asset_key.to_user_string()}: {error}")
                continue
            periods_by_client[client_id] = periods
        summaries_by_client = summarize_windows_of_clients(
            daily_by_client,
            {c: {p.start: p for p in periods} for c, periods in periods_by_client.items()},
        )
        for client_id, periods in periods_by_client.items():
            # Each client's periods are written in one transaction: a stop between clients
            # leaves every (client, period) whole or untouched.
            end_if_stopped(
                context,
                f"writing {summary_type} summaries of client {client_id!r}",
                written,
                {"summaries": rows_written, **row_count(rows_written)},
            )
            rows = []
            for period in periods:
                result = summaries_by_client[client_id][period.start]
                rows.append(
                    {
                        "client_id": client_id,
                        "summary_type": summary_type,
                        "summary_date": period.start,
                        "platform": PLATFORM,
                        "period_end": period.end,
                        "days_in_period": period.length,
                        "days_with_data": result.days_with_data,
                        **result.totals,
                        "currency": result.currency,
                        "campaign_data": result.campaign_data,
                        "data_source": "daily_kpi_data",
                        "updated_at": now,
                    }
                )
            rows_written += warehouse.replace(
                "campaign_summaries",
                [
                    {
                        "client_id": client_id,
                        "summary_type": summary_type,
                        "platform": PLATFORM,
                        "summary_date": [p.start for p in periods],
                    }
                ],
                rows,
            )
            written += [(client_id, p.start) for p in periods]
        metadata = {"summaries": rows_written, **row_count(rows_written)}
        return finish(context, written, failures, metadata)

    return summary


def build_campaign_summaries(catalog: Catalog, daily_kpi_data):
    return [
        _build_summary(catalog, daily_kpi_data, "weekly", week_of),
        _build_summary(catalog, daily_kpi_data, "monthly", month_of),
    ]
