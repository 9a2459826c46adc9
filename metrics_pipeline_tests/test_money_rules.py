"""Money and rates at their edges, as plain functions: sub-cent amounts as Meta writes them,
half-cent ties, negatives, whole-yen rounding, and each rate bound one step either side.

Every expected value is worked out by hand in the comment beside it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from metrics_pipeline.domain.fx import convert_cents, implausible, unstorable
from metrics_pipeline.domain.money import MoneyError, parse_amount_cents


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("14.35", 1435),
        ("0.125", 13),  # 12.5 hundredths, a tie: half up
        ("2.675", 268),  # 267.5: half up (a float would read 2.67499999...)
        ("0.005", 1),  # 0.5
        ("0.0049999", 0),  # just under the tie
        ("0.0050001", 1),  # just over it
        ("0.004", 0),
        ("-0.125", -13),  # ties of negatives round away from zero, like positives
        ("-2.675", -268),
        ("-0.004", 0),
        ("1e2", 10000),
        (" 7.10 ", 710),
        (3, 300),
    ],
)
def test_amount_strings_round_half_up_to_the_cent(text, cents):
    assert parse_amount_cents(text) == cents


@pytest.mark.parametrize("text", ["", "NaN", "Infinity", "-inf", "1,5", "12 EUR", None, True])
def test_what_is_not_an_amount_is_refused(text):
    with pytest.raises(MoneyError, match="not an amount"):
        parse_amount_cents(text)


@pytest.mark.parametrize(
    ("cents", "rate_from", "rate_to", "to", "expected"),
    [
        # 1 USD cent at 2 USD per EUR is half a euro cent: a tie, half up.
        (1, "2", "1", "EUR", 1),
        (1, "2.000001", "1", "EUR", 0),  # a hair under the tie
        (-1, "2", "1", "EUR", -1),
        # 0.01 EUR at 150 JPY per EUR is 1.5 yen: whole yen, half up -> 2 yen (200 hundredths).
        (1, "1", "150", "JPY", 200),
        (1, "1", "149.999999", "JPY", 100),  # 1.49999999 yen -> 1 yen
        # 100.00 NZD at 1.95 NZD and 1.08 USD per EUR: 10000 x 1.08 / 1.95 = 5538.46 -> 5538.
        (10000, "1.95", "1.08", "USD", 5538),
        # Same currency, or the same rate: the amount as it was, never rounded.
        (12345, "1.08", "1.08", "USD", 12345),
    ],
)
def test_a_conversion_rounds_once_to_the_target_minor_unit(cents, rate_from, rate_to, to, expected):
    assert convert_cents(cents, Decimal(rate_from), Decimal(rate_to), to) == expected


@pytest.mark.parametrize(
    ("rate", "refused"),
    [
        ("0.001", False),  # the lower bound itself
        ("0.000999", True),  # one stored step under it
        ("1000000", False),  # the upper bound itself
        ("1000000.000001", True),  # one stored step over it
        ("1.0815", False),
    ],
)
def test_the_plausible_rate_range_at_each_end(rate, refused):
    assert (implausible(Decimal(rate)) is not None) is refused


@pytest.mark.parametrize(
    ("rate", "reason"),
    [
        ("0.0000005", None),  # rounds half up to 0.000001: storable
        ("0.00000049", "rounds to zero"),
        ("999999999999.999999", None),  # the largest NUMERIC(18, 6)
        ("1000000000000", "does not fit"),
        ("1e30", "does not fit"),
    ],
)
def test_what_the_rates_table_can_hold(rate, reason):
    found = unstorable(Decimal(rate))
    assert (found is None) if reason is None else (reason in found)
