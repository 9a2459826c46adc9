"""Expected numbers, computed from the sandbox's ground truth with the documented formulas.

Written independently of the pipeline's own KPI code: the formulas are the spec
(ratios of sums, percent CTR, NULL on a zero denominator, six decimals, half up).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from metrics_pipeline.sandbox.ecb_rates import EcbRates
from metrics_pipeline.sandbox.ground_truth import Totals, day_truth
from metrics_pipeline.sandbox.world import World
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.helpers import local_today, monday_of, month_bounds

SIX = Decimal("0.000001")
CENT = Decimal("0.01")
ZERO_DECIMAL = {"JPY"}  # among the demo's currencies, the one without cents
PortfolioRows = dict[tuple[str, date, str], dict[str, object]]


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


def converted(
    amount: Decimal, currency: str, to: str, day: date, ecb: EcbRates, now: datetime
) -> Decimal:
    """The documented rule: through the euro at the rates in force that day, rounded once,
    half up, to the target's minor unit; the reporting currency itself unchanged."""
    if currency == to:
        return amount

    def per_eur(code: str) -> Decimal:
        return Decimal(1) if code == "EUR" else ecb.rate_in_force(code, day, now)[0]

    unit = Decimal(1) if to in ZERO_DECIMAL else CENT
    return (amount * per_eur(to) / per_eur(currency)).quantize(unit, rounding=ROUND_HALF_UP)


def portfolio_truth(
    world: World,
    ecb: EcbRates,
    accounts: dict[str, str],
    days: dict[str, list[date]],
    now: datetime,
    to: str = "EUR",
    revisions: dict[tuple[str, date], int] | None = None,
) -> PortfolioRows:
    """(period type, period start, client or '*') -> every KPI column in `to`, from each
    client's (`accounts`: client -> account id) true days: money converted per client-day,
    then summed; counts summed; ratios of those sums (`expected_kpis`)."""
    sums: dict[tuple[str, date, str], Totals] = defaultdict(Totals)
    for client, account in accounts.items():
        currency = world.account(account).spec.currency
        today = local_today(world, account, now)
        for day in days[client]:
            truth = day_truth(world, account, day, (revisions or {}).get((client, day), 0), today)
            labels = [("day", day), ("week", monday_of(day)), ("month", month_bounds(day)[0])]
            if now.date().replace(day=1) <= day < now.date():  # whole days of this month
                labels.append(("month_to_date", now.date().replace(day=1)))
            day_in_target = Totals()
            day_in_target.add(truth)
            day_in_target.spend = converted(truth.spend, currency, to, day, ecb, now)
            day_in_target.reservation_value = converted(
                truth.reservation_value, currency, to, day, ecb, now
            )
            for period_type, start in labels:
                for who in (client, "*"):
                    sums[(period_type, start, who)].add(day_in_target)
    return {key: _portfolio_row(normal_expected(totals)) for key, totals in sums.items()}


def _portfolio_row(kpis: dict[str, object]) -> dict[str, object]:
    """Every KPI column, with the four the tests name most under short names."""
    row = dict(kpis)
    row["spend"] = row.pop("total_spend")
    row["value"] = row.pop("reservation_value")
    row["conversions"] = row.pop("total_conversions")
    return row


def stored_portfolio(warehouse: WarehouseResource, currency: str = "EUR") -> PortfolioRows:
    frame = warehouse.read("portfolio_kpis")
    assert set(frame["currency"]) <= {currency}
    return {
        (r["period_type"], r["period_start"], r["client_id"]): _portfolio_row(stored_kpis(r))
        for r in frame.to_dict("records")
    }
