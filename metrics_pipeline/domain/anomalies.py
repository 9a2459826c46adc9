"""KPI anomalies: a day's spend or CPA above, or its ROAS below, the robust band of the
client's `BASELINE_DAYS` before it (their median x/÷ exp(`band_width` typical day-to-day
changes), see `baselines.robust_band`).

Each is judged on the side where it costs money: spend above its band burns budget, CPA
above or ROAS below means each booking costs more or returns less. Spend below its band is
a paused campaign or a stopped account; the month's pacing check warns about that.

CPA and ROAS of a client with few conversions swing from one booking to the next, so each
is judged only when the days before had at least `min_conversions` a day (median) of what
it divides: conversions for CPA, reservations for ROAS. A day with nothing to divide by has
no CPA or ROAS (NULL) and is not judged on it, nor is a day that spent under a quarter of
the usual (its ratios are noise).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from metrics_pipeline.domain.baselines import Band, median, robust_band

DEFAULT_BAND_WIDTH = Decimal(10)
DEFAULT_MIN_FACTOR = Decimal("1.25")
DEFAULT_MIN_CONVERSIONS = 5
# CPA and ROAS of a day that spent under this share of the usual (median) spend are not
# judged: a few cents spent without a booking is a ROAS of 0, not a return gone wrong.
RATIO_SPEND_FLOOR = Decimal("0.25")
BASELINE_DAYS = 28
MIN_BASELINE_DAYS = 14  # fewer days before it and a day is not judged
SPEND, CPA, ROAS = "spend", "cpa", "roas"
HIGH, LOW = "above", "below"
SIDE = {SPEND: HIGH, CPA: HIGH, ROAS: LOW}  # the side of its band a metric is judged on


@dataclass(frozen=True)
class AnomalyRule:
    band_width: Decimal = DEFAULT_BAND_WIDTH
    min_factor: Decimal = DEFAULT_MIN_FACTOR
    min_conversions: int = DEFAULT_MIN_CONVERSIONS


@dataclass(frozen=True)
class DayKpis:
    day: date
    spend: Decimal
    conversions: int  # what CPA divides by
    reservations: int  # what ROAS is the value of
    cpa: Decimal | None
    roas: Decimal | None

    def value(self, metric: str) -> Decimal | None:
        return {SPEND: self.spend, CPA: self.cpa, ROAS: self.roas}[metric]


@dataclass(frozen=True)
class Anomaly:
    day: date
    metric: str
    value: Decimal
    band: Band


def _outside(value: Decimal, band: Band, side: str) -> bool:
    return value > band.high if side == HIGH else value < band.low


def _judged_metrics(baseline: Sequence[DayKpis], rule: AnomalyRule) -> list[str]:
    metrics = [SPEND]
    if median([d.conversions for d in baseline]) >= rule.min_conversions:
        metrics.append(CPA)
    if median([d.reservations for d in baseline]) >= rule.min_conversions:
        metrics.append(ROAS)
    return metrics


def kpi_anomalies(
    history: Sequence[DayKpis], days: Iterable[date], rule: AnomalyRule
) -> tuple[list[Anomaly], list[tuple[date, str]]]:
    """(the anomalies among `days`, every (day, metric) judged), from `history`, which holds
    the days themselves and the `BASELINE_DAYS` before them."""
    by_day = {d.day: d for d in history}
    anomalies: list[Anomaly] = []
    judged: list[tuple[date, str]] = []
    for day in sorted(days):
        today = by_day.get(day)
        window = [by_day.get(day - timedelta(days=n)) for n in range(BASELINE_DAYS, 0, -1)]
        baseline = [d for d in window if d is not None]
        if today is None or len(baseline) < MIN_BASELINE_DAYS:
            continue
        spent_little = today.spend < RATIO_SPEND_FLOOR * median([d.spend for d in baseline])
        for metric in _judged_metrics(baseline, rule):
            if metric != SPEND and spent_little:
                continue
            value = today.value(metric)
            usual = [v for v in (d.value(metric) for d in baseline) if v is not None]
            if value is None or len(usual) < MIN_BASELINE_DAYS:
                continue
            judged.append((day, metric))
            band = robust_band(usual, rule.band_width, rule.min_factor)
            if band is not None and _outside(Decimal(value), band, SIDE[metric]):
                anomalies.append(Anomaly(day, metric, Decimal(value), band))
    return anomalies, judged
