"""KPIs: the ONE aggregation function every store calls.

A frame of KPI inputs holds additive columns only: integer counts and money as integer
hundredths (see `money`). `aggregate_kpis` sums them and derives every ratio from the sums,
so a week, a month, the current-week cache and a rollup of the same days agree to the cent.
Ratios are ratios of sums, never averages of ratios; a zero denominator gives None
("no data"), never 0 and never infinity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd

from metrics_pipeline.domain.metrics import METRICS
from metrics_pipeline.domain.money import cents_to_decimal

# Derived from the registry (see `metrics`), in stored column order.
COUNT_METRICS: tuple[str, ...] = METRICS.count_names
# Money columns inside frames, in hundredths; stored as decimals without the suffix.
MONEY_METRICS: tuple[str, ...] = METRICS.money_frame_columns
ADDITIVE_METRICS: tuple[str, ...] = COUNT_METRICS + MONEY_METRICS
STORED_MONEY_COLUMNS: tuple[str, ...] = METRICS.money_names
STORED_ADDITIVE_COLUMNS: tuple[str, ...] = COUNT_METRICS + STORED_MONEY_COLUMNS
RATIO_METRICS: tuple[str, ...] = METRICS.ratio_names
RATIO_SCALE = Decimal("0.000001")
# The platform column of every KPI store: all numbers so far come from Meta.
PLATFORM = "meta"


def ratio(numerator: int, denominator: int) -> Decimal | None:
    """numerator / denominator to six decimals, None when there is nothing to divide by."""
    if denominator == 0:
        return None
    return (Decimal(int(numerator)) / Decimal(int(denominator))).quantize(
        RATIO_SCALE, rounding=ROUND_HALF_UP
    )


def derive_ratios(totals: Mapping[str, int]) -> dict[str, Decimal | None]:
    spend = int(totals["total_spend_cents"])
    clicks = int(totals["total_clicks"])
    return {
        # CTR is a percentage; CPC and the costs are money (hundredths / 100 per unit).
        "average_ctr": ratio(clicks * 100, int(totals["total_impressions"])),
        "average_cpc": ratio(spend, clicks * 100),
        "roas": ratio(int(totals["reservation_value_cents"]), spend),
        "cost_per_reservation": ratio(spend, int(totals["reservations"]) * 100),
        "average_cpa": ratio(spend, int(totals["total_conversions"]) * 100),
    }


def aggregate_kpis(frame: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Sum the additive metrics of `frame` per group of `by` and derive the ratios.

    With no `by`, the result is one row for the whole frame (zeros for an empty frame).
    """
    by = list(by)
    if by:
        if frame.empty:
            sums = pd.DataFrame(columns=[*by, *ADDITIVE_METRICS])
        else:
            sums = frame.groupby(by, sort=True, dropna=False)[list(ADDITIVE_METRICS)].sum()
            sums = sums.reset_index()
    else:
        totals = {m: int(frame[m].sum()) if not frame.empty else 0 for m in ADDITIVE_METRICS}
        sums = pd.DataFrame([totals])
    for metric in ADDITIVE_METRICS:
        sums[metric] = sums[metric].astype("int64")
    ratios = [derive_ratios(row) for row in sums[list(ADDITIVE_METRICS)].to_dict("records")]
    for name in RATIO_METRICS:
        sums[name] = [r[name] for r in ratios]
    return sums


def totals_record(row: Mapping[str, object]) -> dict[str, object]:
    """An aggregated row in stored form: money back to decimals, counts as ints."""
    record: dict[str, object] = {m: int(row[m]) for m in COUNT_METRICS}
    for stored, cents in zip(STORED_MONEY_COLUMNS, MONEY_METRICS, strict=True):
        record[stored] = cents_to_decimal(int(row[cents]))
    for name in RATIO_METRICS:
        record[name] = row[name]
    return record
