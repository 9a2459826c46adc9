"""Reading the ECB's euro reference rates feed (eurofxref XML) into publications.

The feed comes from outside, so it is read by a real XML parser that expands nothing:
`defusedxml` refuses a document type declaration (and with it every entity, internal or
external), and comments, processing instructions and text are never rates. Structure:

    <gesmes:Envelope ...><Cube>
        <Cube time="2026-11-18"><Cube currency="USD" rate="1.0845"/>...</Cube>
        ...
    </Cube></gesmes:Envelope>

Elements are matched by local name (`Cube`), whatever their namespace.
"""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import iterparse

CURRENCY = re.compile(r"[A-Z]{3}")


class FeedError(ValueError):
    """A feed that cannot be read; the message names the feed, publication, currency, value."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_feed(body: bytes, feed: str = "rates feed") -> dict[date, dict[str, Decimal]]:
    """{publication day: {currency: units per euro}} from the XML `body`; `feed` names it in
    every error (a URL without secrets). Refuses anything not a positive rate, a rate
    outside a publication, and any DTD or entity."""
    publications: dict[date, dict[str, Decimal]] = {}
    opened: list[Element] = []  # the elements around the one being read
    try:
        for event, element in iterparse(io.BytesIO(body), events=("start", "end"), forbid_dtd=True):
            if event == "start":
                opened.append(element)
                continue
            opened.pop()
            if _local(element.tag) != "Cube":
                continue
            if "time" in element.attrib:
                day = _day(element.attrib["time"], feed)
                rates = publications.setdefault(day, {})
                for child in element:
                    if _local(child.tag) == "Cube" and "currency" in child.attrib:
                        currency, rate = _rate(child, day, feed)
                        rates[currency] = rate
                element.clear()  # read: the history need not stay in memory as elements
            elif "currency" in element.attrib:
                parent = opened[-1] if opened else None
                if parent is None or _local(parent.tag) != "Cube" or "time" not in parent.attrib:
                    raise FeedError(
                        f"{feed}: rate for {element.attrib['currency']!r} outside any publication"
                    )
    except DTDForbidden as exc:
        raise FeedError(
            f"{feed}: refused, the XML declares a document type ({exc.name!r}); the ECB "
            "feed has none, and no entity is ever expanded"
        ) from None
    except EntitiesForbidden as exc:
        raise FeedError(
            f"{feed}: refused, the XML declares entity {exc.name!r}; entities are never expanded"
        ) from None
    except ExternalReferenceForbidden:
        raise FeedError(f"{feed}: refused, the XML refers to an external resource") from None
    except ParseError as exc:
        raise FeedError(
            f"{feed}: not well-formed XML ({exc}); is the URL the eurofxref XML?"
        ) from None
    if not publications:
        raise FeedError(f"{feed}: no publication found (is the URL the eurofxref XML?)")
    return publications


def _day(text: str, feed: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FeedError(f"{feed}: publication date {text!r} is not a date") from None


def _rate(element: Element, day: date, feed: str) -> tuple[str, Decimal]:
    currency = element.attrib["currency"]
    text = element.attrib.get("rate", "")
    try:
        rate = Decimal(text)
    except InvalidOperation:
        rate = Decimal("NaN")
    if not rate.is_finite() or rate <= 0 or not CURRENCY.fullmatch(currency):
        raise FeedError(
            f"{feed}: publication {day}, currency {currency!r}, field 'rate': "
            f"{text!r} is not a positive number"
        )
    return currency, rate
