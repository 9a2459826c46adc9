"""Broken conversion tracking: a client spends as usual while its tracked conversions fall
to zero or far below their usual level (a removed pixel, an expired Conversions API token,
a consent banner that blocks the event).

Each day is held to its own weekday: its usual spend and conversions are the medians of the
same weekday's last `BASELINE_WEEKS` days (so a client that never books on Sundays is not
broken every Sunday); its expected conversions are the usual ones, scaled down on a day it
spent less. A day is broken when spend reached `spend_floor_pct` % of its usual and
conversions fell to `drop_pct` % of the expected or below. Broken days are left out of the
baselines of the days after them, so a break that lasts weeks never becomes the usual.

A break is the run of broken days up to the newest day. It is reported only when those days
should have had at least `min_expected` conversions between them: a small client's day
without a booking is noise, a week without one is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from metrics_pipeline.domain.baselines import median

DEFAULT_DROP_PCT = Decimal(10)
DEFAULT_SPEND_FLOOR_PCT = Decimal(25)
DEFAULT_MIN_EXPECTED = 10
BASELINE_WEEKS = 4  # same-weekday days a day's usual level is the median of
MIN_BASELINE_DAYS = 3  # fewer than this and the day is not judged
LOOKBACK_WEEKS = 12  # how far back a baseline may reach past broken or missing days


@dataclass(frozen=True)
class TrackingRule:
    drop_pct: Decimal = DEFAULT_DROP_PCT
    spend_floor_pct: Decimal = DEFAULT_SPEND_FLOOR_PCT
    min_expected: int = DEFAULT_MIN_EXPECTED


@dataclass(frozen=True)
class DayFigures:
    day: date
    spend: Decimal
    conversions: int


@dataclass(frozen=True)
class DayVerdict:
    figures: DayFigures
    usual_spend: Decimal
    expected: Decimal  # see expected_conversions
    baseline: tuple[DayFigures, ...]
    broken: bool


@dataclass(frozen=True)
class TrackingBreak:
    days: tuple[date, ...]
    spend: Decimal
    conversions: int
    expected: Decimal  # the conversions the days usually bring, summed
    spend_range: tuple[Decimal, Decimal]  # lowest and highest daily spend of the baselines
    conversions_range: tuple[int, int]  # the same for conversions


def _baseline(
    day: date, by_day: dict[date, DayFigures], broken: set[date]
) -> tuple[DayFigures, ...]:
    found: list[DayFigures] = []
    for weeks in range(1, LOOKBACK_WEEKS + 1):
        earlier = by_day.get(day - timedelta(weeks=weeks))
        if earlier is not None and earlier.day not in broken:
            found.append(earlier)
            if len(found) == BASELINE_WEEKS:
                break
    return tuple(found)


def expected_conversions(spend: Decimal, baseline: Sequence[DayFigures]) -> Decimal:
    """The conversions a day should bring: the median of its baseline, scaled down when it
    spent less than the baseline's median (never up: a mistyped budget buys no bookings)."""
    usual = median([b.conversions for b in baseline])
    usual_spend = median([b.spend for b in baseline])
    if usual_spend <= 0 or spend >= usual_spend:
        return usual
    return usual * spend / usual_spend


def judge_days(days: Sequence[DayFigures], rule: TrackingRule) -> list[DayVerdict]:
    """A verdict for every day with enough same-weekday history, oldest first."""
    by_day = {d.day: d for d in days}
    broken: set[date] = set()
    verdicts: list[DayVerdict] = []
    for figures in sorted(days, key=lambda d: d.day):
        baseline = _baseline(figures.day, by_day, broken)
        if len(baseline) < MIN_BASELINE_DAYS:
            continue
        usual_spend = median([b.spend for b in baseline])
        expected = expected_conversions(figures.spend, baseline)
        is_broken = (
            expected > 0
            and figures.spend * 100 >= usual_spend * rule.spend_floor_pct
            and figures.conversions * 100 <= expected * rule.drop_pct
        )
        if is_broken:
            broken.add(figures.day)
        verdicts.append(DayVerdict(figures, usual_spend, expected, baseline, is_broken))
    return verdicts


def tracking_break(days: Sequence[DayFigures], rule: TrackingRule) -> TrackingBreak | None:
    """The break going on at the newest of `days`, or None."""
    stretch: list[DayVerdict] = []
    for verdict in reversed(judge_days(days, rule)):
        follows = not stretch or stretch[0].figures.day - verdict.figures.day == timedelta(1)
        if not (verdict.broken and follows):
            break
        stretch.insert(0, verdict)
    newest = max((d.day for d in days), default=None)
    if not stretch or stretch[-1].figures.day != newest:
        return None
    expected = sum((v.expected for v in stretch), Decimal(0))
    if expected < rule.min_expected:
        return None
    baseline = [b for v in stretch for b in v.baseline]
    return TrackingBreak(
        days=tuple(v.figures.day for v in stretch),
        spend=sum((v.figures.spend for v in stretch), Decimal(0)),
        conversions=sum(v.figures.conversions for v in stretch),
        expected=expected,
        spend_range=(min(b.spend for b in baseline), max(b.spend for b in baseline)),
        conversions_range=(
            min(b.conversions for b in baseline),
            max(b.conversions for b in baseline),
        ),
    )
