"""fx_rates: the euro reference rate of every currency on every day.

Read from the ECB's daily reference rates feed (`FxResource.rates_url`). A day without a
publication (weekends, TARGET holidays, or today before 16:00 CET) carries the last rate
published before it, and the row records which publication that was.

A rate the table cannot hold as published (one that rounds to zero at the stored six
decimals, or overflows the column) fails the step before anything is written, naming the
feed, the publication, the currency and the value; the blocking rates check judges whether
the stored rates are plausible.
"""

from datetime import date

from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, asset

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.domain.fx import DayRate, rates_on, unstorable
from metrics_pipeline.fx.resource import FxResource
from metrics_pipeline.steps.freshness import FX_REFRESH
from metrics_pipeline.steps.partial import end_if_stopped
from metrics_pipeline.steps.table_metadata import column_schema, row_count
from metrics_pipeline.warehouse.resource import WarehouseResource

SOURCE = "ecb"


class UnstorableRateError(ValueError):
    """A published rate the warehouse would change (to zero) or refuse (overflow)."""


def refuse_unstorable(rates: list[DayRate], feed: str) -> None:
    """Raises UnstorableRateError naming every such publication, currency and value."""
    found = {
        (rate.published, rate.currency, rate.rate_per_eur): why
        for rate in rates
        if (why := unstorable(rate.rate_per_eur)) is not None
    }
    if found:
        named = "; ".join(
            f"publication {day}, currency {currency}, rate {value}: {why}"
            for (day, currency, value), why in sorted(found.items())
        )
        raise UnstorableRateError(f"{feed}: {named}; nothing stored")


def build_fx_rates(catalog: Catalog):
    @asset(
        name="fx_rates",
        partitions_def=catalog.partitions.days,
        backfill_policy=BackfillPolicy.single_run(),
        group_name="portfolio",
        metadata=column_schema("fx_rates"),
        kinds={"sql"},
        automation_condition=FX_REFRESH,
        description="Per day and currency: units per euro (ECB euro reference rates), the "
        "last publication on or before the day, and that publication's date.",
    )
    def fx_rates(
        context: AssetExecutionContext,
        fx: FxResource,
        warehouse: WarehouseResource,
        clock: ClockResource,
    ) -> MaterializeResult:
        days = [date.fromisoformat(key) for key in context.partition_keys]
        now = clock.now()
        end_if_stopped(context, "about to read the ECB rates")
        rates = rates_on(fx.publications(), days, fx.max_rate_age_days)
        refuse_unstorable(rates, fx.feed_name())
        rows = [
            {
                "date": rate.day,
                "currency": rate.currency,
                "rate_per_eur": rate.rate_per_eur,
                "published_date": rate.published,
                "source": SOURCE,
                "updated_at": now,
            }
            for rate in rates
        ]
        # Reading the feed can take a while: a stop asked for meanwhile writes none of the
        # days (they are written in one transaction).
        end_if_stopped(context, "about to write fx_rates")
        written = warehouse.replace("fx_rates", [{"date": days}], rows)
        carried = sum(1 for r in rows if r["published_date"] != r["date"])
        return MaterializeResult(
            metadata={
                "days": len(days),
                "rates": written,
                "carried_from_earlier": carried,
                **row_count(written),
            }
        )

    return fx_rates
