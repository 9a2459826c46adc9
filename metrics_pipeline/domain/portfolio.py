"""The portfolio: every client's days in one reporting currency, summed into periods.

Each client-day's money is converted at that day's rates (`fx.convert_cents`, rounded once
per client-day) and only then summed, by the same `aggregate_kpis` as every other store, so
a week equals the sum of its converted days to the cent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from metrics_pipeline.domain.fx import FxError, convert_cents
from metrics_pipeline.domain.kpis import (
    ADDITIVE_METRICS,
    MONEY_METRICS,
    aggregate_kpis,
    totals_record,
)
from metrics_pipeline.domain.periods import Period, month_of, week_of
from metrics_pipeline.domain.summaries import daily_rows_to_additive

TOTAL = "*"  # client_id of the row over all clients ('*' is never a client id)
PERIOD_TYPES = ("day", "week", "month", "month_to_date")
_KEYS = ["period_type", "period_start", "period_end"]


def converted_days(
    daily: pd.DataFrame, rates: Mapping[tuple[date, str], Decimal], to: str
) -> pd.DataFrame:
    """Stored daily KPI rows -> additive frame (client_id, date, metrics) in `to`.

    Raises FxError naming the client, the day and the currency when that day has no rate.
    """
    frame = daily_rows_to_additive(daily)
    frame.insert(0, "client_id", list(daily["client_id"]))
    frame.insert(1, "date", list(daily["date"]))
    for money in MONEY_METRICS:
        converted = []
        for client_id, day, currency, cents in zip(
            daily["client_id"], daily["date"], daily["currency"], frame[money], strict=True
        ):
            rate_from, rate_to = rates.get((day, currency)), rates.get((day, to))
            if rate_from is None or rate_to is None:
                missing = currency if rate_from is None else to
                raise FxError(
                    f"client {client_id!r}, date {day}, field 'currency': no usable {missing} "
                    "rate in fx_rates for that day (materialise fx_rates for it)"
                )
            converted.append(convert_cents(int(cents), rate_from, rate_to, to))
        frame[money] = converted
    return frame


def _periods_of(day: date, today: date) -> list[tuple[str, Period]]:
    labels = [("day", Period(day, day)), ("week", week_of(day)), ("month", month_of(day))]
    month_to_date = Period(month_of(today).start, today - timedelta(days=1))
    if month_to_date.start <= day <= month_to_date.end:
        labels.append(("month_to_date", month_to_date))
    return labels


def portfolio_periods(days: pd.DataFrame, today: date) -> list[dict[str, Any]]:
    """Per period (day, ISO week, month, month to date before `today`) one row per client
    and one TOTAL row, in stored form (money as decimals, ratios of converted sums)."""
    if days.empty:
        return []
    parts = []
    for record in days.to_dict("records"):
        for period_type, period in _periods_of(record["date"], today):
            parts.append(
                {
                    **record,
                    "period_type": period_type,
                    "period_start": period.start,
                    "period_end": period.end,
                }
            )
    labelled = pd.DataFrame(parts)
    for metric in ADDITIVE_METRICS:
        labelled[metric] = labelled[metric].astype("int64")
    rows = []
    for by, client in ((["client_id"], None), ([], TOTAL)):
        sums = aggregate_kpis(labelled, by=[*_KEYS, *by])
        days_with_data = labelled.groupby([*_KEYS, *by])["date"].nunique()
        for row in sums.to_dict("records"):
            key = tuple(row[k] for k in (*_KEYS, *by))
            rows.append(
                {
                    "period_type": row["period_type"],
                    "period_start": row["period_start"],
                    "client_id": client or row["client_id"],
                    "period_end": row["period_end"],
                    "days_with_data": int(days_with_data[key]),
                    **totals_record(row),
                }
            )
    return rows
