"""Money: the one place that turns API strings and minor units into exact amounts.

Amounts travel through the pipeline as integer hundredths of the currency's major unit
("cents" even for a zero-decimal currency such as JPY, where 1 yen = 100 hundredths), so
sums are exact integer sums and never drift by floating-point error.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor-unit exponents for currencies Meta ad accounts can bill in. Meta states
# budgets in the minor unit, so the exponent is needed to read them.
_TWO_DECIMALS = """
AED ARS AUD BDT BGN BOB BRL CAD CHF CNY COP CZK DKK DZD EGP EUR GBP GTQ HKD HNL HUF IDR
ILS INR KES MAD MOP MXN MYR NGN NIO NOK NZD PEN PHP PKR PLN QAR RON RUB SAR SEK SGD THB
TRY TWD UAH USD UYU VEF VND ZAR
"""
_ZERO_DECIMALS = "CLP CRC ISK JPY KRW PYG"
CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(_TWO_DECIMALS.split(), 2),
    **dict.fromkeys(_ZERO_DECIMALS.split(), 0),
}

CENT = Decimal("0.01")


class MoneyError(ValueError):
    """An amount or currency that cannot be read exactly."""


def currency_exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r}") from None


def is_known_currency(currency: str) -> bool:
    return currency in CURRENCY_EXPONENTS


def parse_amount_cents(value: object) -> int:
    """A major-unit amount as returned by the API ("14.35") -> hundredths (1435).

    Raises MoneyError for anything that is not a finite, non-empty decimal number.
    """
    if isinstance(value, bool) or value is None:
        raise MoneyError(f"not an amount: {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise MoneyError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise MoneyError(f"not an amount: {value!r}")
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def minor_units_to_cents(minor_units: object, currency: str) -> int:
    """A budget in the currency's minor unit (Meta's convention) -> hundredths."""
    units = int(str(minor_units))
    return units * 10 ** (2 - currency_exponent(currency))


def cents_to_decimal(cents: int) -> Decimal:
    return (Decimal(int(cents)) / 100).quantize(CENT)


def decimal_to_cents(amount: Decimal | float | int) -> int:
    return int((Decimal(str(amount)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
