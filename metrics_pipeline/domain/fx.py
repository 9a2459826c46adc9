"""Currency conversion: the one function that turns an amount into the reporting currency.

Rates are the European Central Bank's euro reference rates: units of a currency per 1 EUR
(EUR itself is 1). An amount moves from currency A to currency B in ONE step through the
euro, amount x rate(B) / rate(A), and is rounded once, half up, to B's minor unit (the cent
for EUR, the whole yen for JPY). Money is converted per client-day at that day's rates and
only then summed, so a week is the sum of its converted days, never a total times one rate.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from metrics_pipeline.domain.money import currency_exponent, is_known_currency

EURO = "EUR"
# fx_rates.rate_per_eur is NUMERIC(18, 6) (warehouse/schema.py): six decimals, and less
# than 10^12 in all.
STORED_RATE_PLACES = 6
STORED_RATE_LIMIT = Decimal(10) ** (18 - STORED_RATE_PLACES)
# Units per euro a real rate lies in, both ends included. The currencies the pipeline knows
# (domain/money.py) run from GBP, about 0.85 per euro, to VND, about 30,000 (IDR, about
# 19,000, is the largest the ECB publishes; ISK and KRW are in the hundreds and thousands).
# Under 0.001 six stored decimals keep fewer than four significant digits; 1,000,000 is
# over 30 times VND. A rate outside is a broken feed, not a market move.
MIN_PLAUSIBLE_RATE = Decimal("0.001")
MAX_PLAUSIBLE_RATE = Decimal(1_000_000)


# The currencies the ECB's euro reference rates quote (its list since 2026-01-01, when the
# Bulgarian lev left it for the euro). A portfolio can report only in one of these or EUR.
_ECB_QUOTED = """
USD JPY CZK DKK GBP HUF PLN RON SEK CHF ISK NOK TRY AUD BRL CAD CNY HKD IDR ILS INR KRW MXN
MYR NZD PHP SGD THB ZAR
"""
ECB_QUOTED: tuple[str, ...] = tuple(_ECB_QUOTED.split())
REPORTING_CURRENCIES: tuple[str, ...] = (
    EURO,
    *sorted(c for c in ECB_QUOTED if is_known_currency(c)),
)


class FxError(ValueError):
    """A conversion without a usable rate."""


@dataclass(frozen=True)
class DayRate:
    """The rate that holds on a day: the last publication on or before it."""

    day: date
    currency: str
    rate_per_eur: Decimal
    published: date


def reporting_currency_problem(code: str) -> str | None:
    """Why `code` cannot be the reporting currency (what is accepted), or None if it can:
    an ISO 4217 code whose minor unit this project knows, quoted by the ECB feed or EUR."""
    if code in REPORTING_CURRENCIES:
        return None
    upper = code.strip().upper()
    hint = f" (did you mean {upper}?)" if upper in REPORTING_CURRENCIES else ""
    return (
        f"{code!r} is not a currency the euro reference rates quote{hint}; accepted: "
        + ", ".join(REPORTING_CURRENCIES)
    )


def convert_cents(amount_cents: int, rate_from: Decimal, rate_to: Decimal, to: str) -> int:
    """Hundredths of currency A -> hundredths of currency `to`, rounded half up to `to`'s
    minor unit (a zero-decimal currency ends on whole units, i.e. multiples of 100)."""
    if rate_from == rate_to:
        return int(amount_cents)  # same currency (or same rate): exact, no rounding at all
    step = Decimal(10) ** (2 - currency_exponent(to))
    exact = Decimal(int(amount_cents)) * Decimal(rate_to) / Decimal(rate_from)
    return int((exact / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step)


def rates_on(
    publications: Mapping[date, Mapping[str, Decimal]],
    days: Iterable[date],
    max_age_days: int,
) -> list[DayRate]:
    """Each day's rate per currency: that day's publication, else the last one before it
    (weekends, TARGET holidays); nothing for a currency whose last publication is older
    than `max_age_days` (the feed stopped quoting it). EUR is 1 on every day."""
    published_days = sorted(publications)
    found: list[DayRate] = []
    for day in sorted(days):
        # Only the publications of the last `max_age_days` days can hold on `day`.
        first = bisect_left(published_days, day - timedelta(days=max_age_days))
        last = bisect_right(published_days, day)
        latest: dict[str, tuple[Decimal, date]] = {}
        for published in published_days[first:last]:
            for currency, rate in publications[published].items():
                latest[currency] = (rate, published)
        found.append(DayRate(day, EURO, Decimal(1), day))
        found += [
            DayRate(day, currency, rate, published)
            for currency, (rate, published) in sorted(latest.items())
            if currency != EURO
        ]
    return found


def unstorable(rate: Decimal) -> str | None:
    """Why the warehouse cannot hold `rate` as it is, or None: it would round to zero at the
    stored decimals, or not fit the column at all."""
    if rate < STORED_RATE_LIMIT:  # else too long to round at all
        stored = rate.quantize(Decimal(1).scaleb(-STORED_RATE_PLACES), rounding=ROUND_HALF_UP)
        if stored == 0:
            return f"rounds to zero at the stored {STORED_RATE_PLACES} decimals"
        if stored < STORED_RATE_LIMIT:
            return None
    return f"does not fit the stored NUMERIC(18, {STORED_RATE_PLACES})"


def implausible(rate: Decimal) -> str | None:
    """Why `rate` (units per euro) cannot be a real reference rate, or None."""
    if MIN_PLAUSIBLE_RATE <= rate <= MAX_PLAUSIBLE_RATE:
        return None
    return f"outside the plausible {MIN_PLAUSIBLE_RATE} to {MAX_PLAUSIBLE_RATE} per EUR"


def move_pct(previous: Decimal, current: Decimal) -> Decimal:
    """How far a rate moved from the previous publication, in percent (absolute)."""
    return (abs(Decimal(current) / Decimal(previous) - 1) * 100).quantize(Decimal("0.0001"))
