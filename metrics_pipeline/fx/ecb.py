"""Reading the ECB's euro reference rates feed (eurofxref XML) into publications."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

# <Cube time="2026-11-18"> opens a publication; <Cube currency="USD" rate="1.0845"/> is
# one of its rates. The feed is flat and regular, so two patterns read it completely.
_TAG = re.compile(r'<Cube\s+(?:time="([^"]*)"|currency="([^"]*)"\s+rate="([^"]*)")\s*/?>')


class FeedError(ValueError):
    """A feed that cannot be read; the message names the publication, currency and value."""


def parse_feed(body: str) -> dict[date, dict[str, Decimal]]:
    """{publication day: {currency: units per euro}}; refuses anything not a positive rate."""
    publications: dict[date, dict[str, Decimal]] = {}
    current: date | None = None
    for match in _TAG.finditer(body):
        day_text, currency, rate_text = match.groups()
        if day_text is not None:
            try:
                current = date.fromisoformat(day_text)
            except ValueError:
                raise FeedError(
                    f"rates feed: publication date {day_text!r} is not a date"
                ) from None
            publications.setdefault(current, {})
            continue
        if current is None:
            raise FeedError(f"rates feed: rate for {currency} outside any publication")
        try:
            rate = Decimal(rate_text)
        except InvalidOperation:
            rate = Decimal("NaN")
        if not rate.is_finite() or rate <= 0 or not re.fullmatch(r"[A-Z]{3}", currency):
            raise FeedError(
                f"rates feed: publication {current}, currency {currency!r}, field 'rate': "
                f"{rate_text!r} is not a positive number"
            )
        publications[current][currency] = rate
    if not publications:
        raise FeedError("rates feed: no publication found (is the URL the eurofxref XML?)")
    return publications
