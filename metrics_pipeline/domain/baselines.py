"""A client's usual level: the one median and robust band the KPI watches use.

Medians rather than means: one spike, or a stretch of broken days, barely moves them, so
the band a day is judged against is not dragged along by the very anomaly it should show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from itertools import pairwise

from metrics_pipeline.domain.kpis import RATIO_SCALE


def median(values: Sequence[Decimal | int]) -> Decimal:
    """The middle value (the mean of the two middle ones for an even count)."""
    if not values:
        raise ValueError("the median of no values")
    ordered = sorted(Decimal(v) for v in values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True)
class Band:
    median: Decimal
    low: Decimal
    high: Decimal  # inclusive bounds


def typical_change(logs: Sequence[Decimal]) -> Decimal:
    """The median absolute change from one value to the next (0 for fewer than two).

    The spread of the band: unlike the deviation from the median, it is not inflated when
    the level itself moved inside the window (a campaign paused halves spend for good, one
    change among many small ones)."""
    changes = [abs(b - a) for a, b in pairwise(logs)]
    return median(changes) if changes else Decimal(0)


@lru_cache(maxsize=1 << 16)
def _ln(value: Decimal) -> Decimal:
    """The natural logarithm of a positive value. Cached: a day's value sits in the windows
    of the 28 days after it, and `Decimal.ln` is the slowest step of a band."""
    return value.ln()


def robust_band(
    values: Sequence[Decimal | int], width: Decimal, min_factor: Decimal
) -> Band | None:
    """The band a day's value is held to, from `values` in day order: their median x/÷
    exp(`width` x the typical day-to-day change), on the logarithms, and never narrower
    than x/÷ `min_factor` (a client whose days are all alike would otherwise leave it with
    any change).

    On the log scale because spend, CPA and ROAS are multiplicative: a day at twice the
    usual is as far out as a day at half. Values of zero or less have no logarithm and are
    left out; None when none is left.
    """
    logs = [_ln(Decimal(v)) for v in values if v > 0]
    if not logs:
        return None
    centre = median(logs)
    half = max(width * typical_change(logs), min_factor.ln())
    # To six decimals, as every ratio is stored: exp(ln x) is x only to the 28th digit.
    bounds = (centre.exp(), (centre - half).exp(), (centre + half).exp())
    return Band(*(b.quantize(RATIO_SCALE, rounding=ROUND_HALF_UP) for b in bounds))
