"""The sandbox's euro reference rates, shaped like the European Central Bank's feed.

Deterministic: a currency's rate on a day is a pure function of (currency, day), so the
demo and the tests need no internet and know the truth. Rates are published at 16:00
Central European time on TARGET business days only: never on weekends, New Year's Day,
Good Friday, Easter Monday, 1 May, 25 and 26 December. Tests can withhold a currency from
some publications or correct a published rate; the ground truth follows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo

FEED_PATH = "/stats/eurofxref/eurofxref-hist.xml"  # the path the ECB serves it under
FIRST_PUBLICATION = date(2020, 1, 2)  # before anything Meta still serves (37 months)
PUBLISHED_AT = time(16, 0)
PUBLISHED_IN = ZoneInfo("Europe/Berlin")
# Units per euro around which each currency's rate moves (at most 0.4 % either way).
BASE_RATES: dict[str, Decimal] = {
    "USD": Decimal("1.08"),
    "JPY": Decimal("162.5"),
    "GBP": Decimal("0.86"),
    "AUD": Decimal("1.66"),
    "NZD": Decimal("1.82"),
    "CHF": Decimal("0.94"),
    "CAD": Decimal("1.50"),
    "SEK": Decimal("11.45"),
}


def easter_sunday(year: int) -> date:
    """Gregorian Easter (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    weekday_shift = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday_shift) // 451
    month, day = divmod(h + weekday_shift - 7 * m + 114, 31)
    return date(year, month, day + 1)


def target_holidays(year: int) -> set[date]:
    easter = easter_sunday(year)
    return {
        date(year, 1, 1),
        easter - timedelta(days=2),
        easter + timedelta(days=1),
        date(year, 5, 1),
        date(year, 12, 25),
        date(year, 12, 26),
    }


def is_publication_day(day: date) -> bool:
    return day.weekday() < 5 and day not in target_holidays(day.year)


def last_publication_day(now: datetime) -> date:
    """The day of the newest publication made by `now` (a day's rates appear at 16:00 CET)."""
    local = now.astimezone(PUBLISHED_IN)
    return local.date() if local.time() >= PUBLISHED_AT else local.date() - timedelta(days=1)


@cache
def base_rate(currency: str, day: date) -> Decimal:
    """The deterministic rate before any test change: 4 decimals, 2 from 100 units up."""
    digest = hashlib.sha256(f"{currency}|{day.isoformat()}".encode()).digest()
    wobble = Decimal(int.from_bytes(digest[:4], "big") % 801 - 400) / Decimal(100_000)
    places = Decimal("0.01") if BASE_RATES[currency] >= 100 else Decimal("0.0001")
    return (BASE_RATES[currency] * (1 + wobble)).quantize(places)


@dataclass
class EcbRates:
    """What the sandbox publishes; `withhold` and `correct` change it (and the truth)."""

    withheld: set[tuple[str, date]] = field(default_factory=set)
    corrections: dict[tuple[str, date], Decimal] = field(default_factory=dict)

    def withhold(self, currency: str, start: date, end: date) -> None:
        """Leave `currency` out of every publication from `start` to `end`."""
        day = start
        while day <= end:
            self.withheld.add((currency, day))
            day += timedelta(days=1)

    def correct(self, currency: str, day: date, rate: Decimal) -> None:
        self.corrections[(currency, day)] = Decimal(rate)

    def publications(self, now: datetime) -> dict[date, dict[str, Decimal]]:
        """Every publication made by `now`: {day: {currency: units per euro}}."""
        found: dict[date, dict[str, Decimal]] = {}
        day, last = FIRST_PUBLICATION, last_publication_day(now)
        while day <= last:
            if is_publication_day(day):
                found[day] = {
                    currency: self.corrections.get((currency, day), base_rate(currency, day))
                    for currency in BASE_RATES
                    if (currency, day) not in self.withheld
                }
            day += timedelta(days=1)
        return found

    def rate_in_force(self, currency: str, day: date, now: datetime) -> tuple[Decimal, date]:
        """Ground truth: the rate of the last publication on or before `day`, and its date."""
        published = min(day, last_publication_day(now))
        while published >= FIRST_PUBLICATION:
            if is_publication_day(published) and (currency, published) not in self.withheld:
                rate = self.corrections.get((currency, published), base_rate(currency, published))
                return rate, published
            published -= timedelta(days=1)
        raise KeyError(f"no {currency} rate published by {day}")

    def feed(self, now: datetime) -> bytes:
        """The whole history in the ECB's XML format, newest publication first."""
        lines = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" '
            'xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">',
            "\t<gesmes:subject>Reference rates</gesmes:subject>",
            "\t<gesmes:Sender>",
            "\t\t<gesmes:name>European Central Bank</gesmes:name>",
            "\t</gesmes:Sender>",
            "\t<Cube>",
        ]
        for day, rates in sorted(self.publications(now).items(), reverse=True):
            lines.append(f'\t\t<Cube time="{day.isoformat()}">')
            lines += [f'\t\t\t<Cube currency="{c}" rate="{r}"/>' for c, r in rates.items()]
            lines.append("\t\t</Cube>")
        lines += ["\t</Cube>", "</gesmes:Envelope>", ""]
        return "\n".join(lines).encode()
