"""Faults the sandbox can inject, switchable per test (HTTP or Python) and from its CLI.

A fault matches requests by route kind and account, fires `count` times (or forever with
count -1), and is one of the classes below, each with Meta's real error body and usage
headers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

# An invalid-parameter message that must never reach a person as it is: escape sequences
# (clear the screen, red), a carriage return and newline, BEL, NUL and a C1 control (CSI),
# then 5,000 characters.
HOSTILE_MESSAGE = (
    "\x1b[2J\x1b[31m(#100) Invalid parameter\x1b[0m\r\nsee\x07\x00\x9b below " + "x" * 5000
)
# kind -> (HTTP status, error code, subcode, is_transient, message)
ERROR_FAULTS: dict[str, tuple[int, int, int | None, bool, str]] = {
    "throttle_app": (400, 4, None, False, "(#4) Application request limit reached"),
    "throttle_user": (400, 17, 2446079, False, "(#17) User request limit reached"),
    "throttle_api": (400, 32, None, False, "(#32) Page request limit reached"),
    "throttle_calls": (
        400,
        613,
        None,
        False,
        "(#613) Calls to this api have exceeded the rate limit.",
    ),
    "throttle_insights": (
        400,
        80004,
        2446079,
        False,
        "(#80004) There have been too many calls to this ad-account. Wait a bit and try again.",
    ),
    "unknown_error": (500, 1, 99, False, "An unknown error occurred"),
    "service_unavailable": (503, 2, None, True, "Service temporarily unavailable"),
    "transient": (
        500,
        2,
        None,
        True,
        "An unexpected error has occurred. Please retry your request later.",
    ),
    "reduce_data": (
        500,
        1,
        None,
        False,
        "Please reduce the amount of data you're asking for, then retry your request",
    ),
    "auth": (400, 190, 463, False, "Error validating access token: Session has expired."),
    "permission": (400, 200, None, False, "(#200) Requires ads_read permission"),
    "invalid": (400, 100, None, False, "(#100) Invalid parameter"),
    "hostile_message": (400, 100, None, False, HOSTILE_MESSAGE),
}
# Faults that break the transport or the body rather than answer with an error.
TRANSPORT_FAULTS = {
    "slow",
    "drop",
    "truncate",
    "http_502",
    "slow_body",  # the body trickles in `pieces` parts, `delay_seconds` apart
    "huge_body",  # a body of `size_bytes`, sent without Content-Length
    "redirect",  # HTTP `status` to the same path and query on `target` (scheme://host:port)
    "hold",  # the answer waits until the faults are cleared, or `delay_seconds` at most
}
# Faults of async report runs.
REPORT_FAULTS = {
    "report_failed",
    "report_stalled",
    "report_creeping",  # progress rises by one percent a poll, up to 99, never completes
}
# Faults of a page's paging or size: they answer 200 with a page that must not be taken.
PAGE_FAULTS = {
    "foreign_next",  # paging.next on `target` (scheme://host:port) instead of this host
    "repeated_cursor",  # paging.next asks for the page just served
    "oversized_page",  # twice `limit` rows, padded by repeating rows
    "reduce_data_page",  # a report's first result page refused while `limit` > `max_limit`
    "reduce_data_pages",  # every result page of a report refused while `limit` > `max_limit`
}
# Faults that corrupt the numbers of matching rows (on `day`, for `account`) in ways that
# parse but that quality checks must catch.
DATA_FAULTS = {
    "clicks_over_impressions",
    "zero_spend",
    "broken_funnel",
    "huge_spend",
    # input the pipeline must refuse for that client and day ...
    "missing_ad_id",
    "empty_spend",
    "nan_impressions",
    "negative_spend",
    # ... and input it must handle as the API means it
    "unknown_action",
    "duplicate_rows",
    "out_of_range_date",
    "repeated_page",
    "unknown_currency",
}
# Faults of the exchange-rate feed (`ecb_rates.FEED_PATH`, route "rates"); only the feed
# takes them, and it takes no other.
FEED_FAULTS = {
    "feed_huge_body",  # the feed's start, then padding up to `size_bytes`, no Content-Length
    "feed_gzip_bomb",  # Content-Encoding: gzip, inflating to `size_bytes` (about 1/1000 sent)
    "feed_slow_body",  # the feed in `pieces` parts, `delay_seconds` apart
    "feed_redirect",  # HTTP `status` to the feed's path on `target`; None: this server
    "feed_comment_cube",  # a publication inside an XML comment, USD at 9.9999
    "feed_entity_bomb",  # a DTD of nested entities, ten to a level (billion laughs)
    "feed_entity_rate",  # the newest USD rate given through an internal entity
}
KINDS = (
    set(ERROR_FAULTS) | TRANSPORT_FAULTS | REPORT_FAULTS | PAGE_FAULTS | DATA_FAULTS | FEED_FAULTS
)
# Options given as text on the command line (the others are numbers).
TEXT_OPTIONS = {"route", "account", "day", "target"}


@dataclass
class Fault:
    kind: str
    count: int = 1  # -1: every matching request
    route: str = "any"  # any | insights | objects | account | report | rates
    account: str | None = None  # digits; None: every account
    regain_minutes: float = 0.0  # estimated_time_to_regain_access on throttling faults
    delay_seconds: float = 2.0  # "slow"; between the pieces of "slow_body"; "hold" at most
    pieces: int = 20  # slow_body
    size_bytes: int = 100_000_000  # huge_body, feed_huge_body, feed_gzip_bomb (inflated)
    target: str | None = None  # foreign_next, redirect, feed_redirect: scheme://host:port
    status: int = 302  # redirect, feed_redirect
    max_limit: int = 100  # reduce_data_page, reduce_data_pages
    min_days: int = 0  # reduce_data: only for requests spanning more than this many days
    day: str | None = None  # data faults: the ISO date whose rows are corrupted
    fired: int = 0
    # huge_body, feed_huge_body, feed_gzip_bomb: what the peer accepted (as sent, so
    # compressed for the bomb) before it hung up
    sent_bytes: int = 0
    held: int = 0  # hold: answers waiting now
    released: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; known: {', '.join(sorted(KINDS))}")

    def matches(self, route: str, account: str | None, days: int) -> bool:
        if self.count != -1 and self.fired >= self.count:
            return False
        if self.route != "any" and self.route != route:
            return False
        if self.account is not None and self.account != account:
            return False
        return not (self.kind == "reduce_data" and days <= self.min_days)


@dataclass
class FaultPlan:
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **spec: Any) -> Fault:
        fault = Fault(**spec)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            for fault in self.faults:
                fault.released.set()  # held answers go out now
            self.faults.clear()

    def data_faults_by_day(self, account: str) -> Callable[[str], tuple[str, ...]]:
        """`data_faults` for one account as of now, for a whole response: one look under
        the lock instead of one per row."""
        with self.lock:
            relevant = [
                f for f in self.faults if f.kind in DATA_FAULTS and f.account in (None, account)
            ]

        @cache
        def kinds(day: str) -> tuple[str, ...]:
            return tuple(f.kind for f in relevant if f.day in (None, day))

        return kinds

    def data_faults(self, account: str, day: str) -> list[str]:
        """Kinds of the data faults that corrupt this account's rows of `day`."""
        with self.lock:
            return [
                f.kind
                for f in self.faults
                if f.kind in DATA_FAULTS and f.account in (None, account) and f.day in (None, day)
            ]

    def take(
        self, route: str, account: str | None, days: int = 0, kinds: set[str] | None = None
    ) -> Fault | None:
        """The first matching fault, counted as fired."""
        with self.lock:
            for fault in self.faults:
                if kinds is not None and fault.kind not in kinds:
                    continue
                if fault.matches(route, account, days):
                    fault.fired += 1
                    return fault
        return None


def parse_fault(text: str) -> dict[str, Any]:
    """`kind[:key=value,...]` from the command line, e.g. `throttle_insights:count=3`."""
    kind, _, options = text.partition(":")
    spec: dict[str, Any] = {"kind": kind}
    for option in filter(None, options.split(",")):
        key, _, value = option.partition("=")
        spec[key] = value if key in TEXT_OPTIONS else float(value) if "." in value else int(value)
    return spec
