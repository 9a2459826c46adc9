"""Expected numbers, computed from the sandbox's ground truth with the documented formulas.

Written independently of the pipeline's own KPI code: the formulas are the spec
(ratios of sums, percent CTR, NULL on a zero denominator, six decimals, half up).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from metrics_pipeline.sandbox.ground_truth import Totals

SIX = Decimal("0.000001")


def _div(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    if Decimal(denominator) == 0:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(SIX, rounding=ROUND_HALF_UP)


def expected_kpis(t: Totals) -> dict[str, object]:
    return {
        "total_spend": t.spend,
        "total_impressions": t.impressions,
        "total_clicks": t.clicks,
        "total_conversions": t.total_conversions,
        "click_to_call": t.click_to_call,
        "email_contacts": t.email_contacts,
        "booking_step_1": t.booking_step_1,
        "booking_step_2": t.booking_step_2,
        "booking_step_3": t.booking_step_3,
        "reservations": t.reservations,
        "reservation_value": t.reservation_value,
        "average_ctr": _div(Decimal(t.clicks) * 100, t.impressions),
        "average_cpc": _div(t.spend, t.clicks),
        "roas": _div(t.reservation_value, t.spend),
        "cost_per_reservation": _div(t.spend, t.reservations),
        "average_cpa": _div(t.spend, t.total_conversions),
    }


def _normal(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, float):
        return Decimal(str(value)).quantize(SIX)
    if isinstance(value, Decimal):
        return value.quantize(SIX)
    if hasattr(value, "item"):  # numpy scalars
        return _normal(value.item())
    return value


def stored_kpis(row: dict) -> dict[str, object]:
    return {k: _normal(row[k]) for k in expected_kpis(Totals())}


def normal_expected(t: Totals) -> dict[str, object]:
    return {k: _normal(v) for k, v in expected_kpis(t).items()}
