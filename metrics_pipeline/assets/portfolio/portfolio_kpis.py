"""portfolio_kpis: every client and the agency total in the reporting currency.

Per day, ISO week, month and month to date (whole days before the clock's UTC today), one
row per client and one total row (client_id '*'). Money is converted per client-day at that
day's rates, then summed (`domain.portfolio`); the whole table is rebuilt in one
transaction, so a late-attribution change or a corrected rate reaches every period.
"""

from datetime import UTC, date

import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, asset

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.domain.kpis import STORED_ADDITIVE_COLUMNS
from metrics_pipeline.domain.portfolio import converted_days, portfolio_periods
from metrics_pipeline.fx.resource import FxResource
from metrics_pipeline.steps.frames import read_daily_kpis
from metrics_pipeline.steps.freshness import DAILY_FRESHNESS, REFRESH_WHEN_DAYS_CHANGE
from metrics_pipeline.steps.kpi_metadata import portfolio_metadata
from metrics_pipeline.steps.partial import end_if_stopped
from metrics_pipeline.steps.table_metadata import column_schema, row_count
from metrics_pipeline.warehouse.resource import WarehouseResource

DAILY_COLUMNS = ["client_id", "date", "currency", *STORED_ADDITIVE_COLUMNS]


def build_portfolio_kpis(catalog: Catalog, daily_kpi_data, fx_rates):
    @asset(
        name="portfolio_kpis",
        deps=[daily_kpi_data, fx_rates],
        group_name="portfolio",
        metadata=column_schema("portfolio_kpis"),
        kinds={"pandas", "sql"},
        freshness_policy=DAILY_FRESHNESS,
        automation_condition=REFRESH_WHEN_DAYS_CHANGE,
        description="Per day, ISO week, month and month to date: each client and the total, "
        "in the reporting currency, converted per day at that day's ECB rate.",
    )
    def portfolio_kpis(
        context: AssetExecutionContext,
        fx: FxResource,
        warehouse: WarehouseResource,
        clock: ClockResource,
    ) -> MaterializeResult:
        now = clock.now()
        # Through the one refusing reader, like every other store above daily_kpi_data.
        frames = []
        for client_id in catalog.client_ids:
            end_if_stopped(context, f"reading the daily KPIs of client {client_id!r}")
            frames.append(read_daily_kpis(warehouse, client_id))
        daily = pd.concat(
            [frame[DAILY_COLUMNS] for frame in frames if not frame.empty]
            or [pd.DataFrame(columns=DAILY_COLUMNS)],
            ignore_index=True,
        )
        days: list[date] = sorted(set(daily["date"]))
        stored = warehouse.read("fx_rates", {"date": days}) if days else None
        rates = (
            {}
            if stored is None
            else dict(
                zip(
                    zip(stored["date"], stored["currency"], strict=True),
                    stored["rate_per_eur"],
                    strict=True,
                )
            )
        )
        converted = converted_days(daily, rates, fx.reporting_currency)
        rows = [
            {**row, "currency": fx.reporting_currency, "updated_at": now}
            for row in portfolio_periods(converted, now.astimezone(UTC).date())
        ]
        written = warehouse.replace("portfolio_kpis", [{}], rows)
        context.log.info(f"portfolio_kpis: {written} rows in {fx.reporting_currency}")
        return MaterializeResult(
            metadata={
                "rows": written,
                "reporting_currency": fx.reporting_currency,
                "first_day": str(days[0]) if days else "-",
                "last_day": str(days[-1]) if days else "-",
                # In the reporting currency: the plots' points and the latest week's table.
                **portfolio_metadata(rows, now.astimezone(UTC).date()),
                **row_count(written),
            }
        )

    return portfolio_kpis
