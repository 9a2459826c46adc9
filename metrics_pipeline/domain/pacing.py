"""Month pacing: the one place a month-to-date is projected to month end and judged.

The projection scales the whole days elapsed (today excluded) to the month's length. A
client is off pace when the projected spend leaves its band of the monthly budget, or the
projected reservations or conversions fall below a share of their targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from metrics_pipeline.domain.kpis import RATIO_SCALE, ratio
from metrics_pipeline.domain.money import CENT
from metrics_pipeline.domain.periods import month_of

DEFAULT_SPEND_BAND_PCT = (Decimal(70), Decimal(115))
DEFAULT_TARGET_FLOOR_PCT = Decimal(90)
# The conditions a client can be off pace on, as the alerts name them.
SPEND, RESERVATIONS, CONVERSIONS = "spend", "reservations", "conversions"


def _percent(part: Decimal | int, whole: Decimal | int | None) -> Decimal | None:
    if whole in (None, 0):
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(RATIO_SCALE, rounding=ROUND_HALF_UP)


def pacing(
    today: date,
    totals: Mapping[str, Any],
    monthly_budget: Decimal | None,
    conversion_target: int | None,
    reservation_target: int | None,
) -> dict[str, Any]:
    """End-of-month projection and progress against budget and targets, from the whole
    days of the month before `today` (`totals` in stored form: spend a decimal)."""
    month = month_of(today)
    elapsed = (today - month.start).days
    scale = Decimal(month.length) / Decimal(elapsed) if elapsed else None
    spend = Decimal(totals["total_spend"])
    conversions, reservations = int(totals["total_conversions"]), int(totals["reservations"])
    return {
        "days_elapsed": elapsed,
        "days_in_month": month.length,
        "projected_spend": (spend * scale).quantize(CENT, rounding=ROUND_HALF_UP)
        if scale
        else None,
        "projected_conversions": ratio(conversions * month.length, elapsed),
        "projected_reservations": ratio(reservations * month.length, elapsed),
        "monthly_budget": monthly_budget,
        "budget_progress_pct": _percent(spend, monthly_budget),
        "expected_progress_pct": _percent(elapsed, month.length),
        "conversion_target": conversion_target,
        "conversion_progress_pct": _percent(conversions, conversion_target),
        "reservation_target": reservation_target,
        "reservation_progress_pct": _percent(reservations, reservation_target),
    }


@dataclass(frozen=True)
class PaceRule:
    spend_band_pct: tuple[Decimal, Decimal] = DEFAULT_SPEND_BAND_PCT
    target_floor_pct: Decimal = DEFAULT_TARGET_FLOOR_PCT


@dataclass(frozen=True)
class OffPace:
    condition: str  # SPEND | RESERVATIONS | CONVERSIONS
    projected: Decimal
    limit: str  # what it was held to, e.g. "budget 6000.00 (70%-115%)"
    days_left: int  # days of the month still to come, today included


def judge(
    projection: Mapping[str, Any], rule: PaceRule
) -> tuple[list[OffPace], list[str], list[str]]:
    """(off-pace conditions, conditions judged, conditions skipped with the reason)."""
    days_left = int(projection["days_in_month"]) - int(projection["days_elapsed"])
    off: list[OffPace] = []
    judged: list[str] = []
    skipped: list[str] = []
    low, high = rule.spend_band_pct
    budget = projection["monthly_budget"]
    checks = [
        (SPEND, projection["projected_spend"], budget, "no monthly_budget"),
        (
            RESERVATIONS,
            projection["projected_reservations"],
            projection["reservation_target"],
            "no reservations target",
        ),
        (
            CONVERSIONS,
            projection["projected_conversions"],
            projection["conversion_target"],
            "no conversions target",
        ),
    ]
    for condition, projected, goal, missing in checks:
        if goal is None:
            skipped.append(f"{condition}: {missing}")
            continue
        if projected is None:
            skipped.append(f"{condition}: no whole day of the month yet")
            continue
        judged.append(condition)
        projected, goal = Decimal(projected), Decimal(goal)
        if condition == SPEND:
            if not goal * low / 100 <= projected <= goal * high / 100:
                off.append(
                    OffPace(condition, projected, f"budget {goal:.2f} ({low}%-{high}%)", days_left)
                )
        elif projected < goal * rule.target_floor_pct / 100:
            off.append(
                OffPace(
                    condition,
                    projected,
                    f"target {goal:.0f} (at least {rule.target_floor_pct}%)",
                    days_left,
                )
            )
    return off, judged, skipped
