"""The euro reference rates feed, served beside the Graph API at the ECB's own path.

Public like the ECB's: no token, no version prefix, no usage counting, XML not JSON. Its
faults (`faults.FEED_FAULTS`) are what a feed from outside can do to its reader: a body
without end, a gzip bomb, a trickle, a redirect elsewhere, a publication hidden in a
comment, entity tricks.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Generator
from dataclasses import replace

from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
from metrics_pipeline.sandbox.faults import Fault
from metrics_pipeline.sandbox.graph.delivery import padded_stream
from metrics_pipeline.sandbox.graph.messages import FakeResponse, Request
from metrics_pipeline.sandbox.graph.state import SandboxState

XML_TYPE = "text/xml"
# A huge feed: its opening, then padding inside a comment.
FEED_OPENING = b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- '
# One gzip member inflating to a MiB; members concatenated are one valid gzip body.
BOMB_MEMBER_BYTES = 1024 * 1024
BOMB_MEMBERS_PER_WRITE = 64
LAUGH_LEVELS = 9  # ten to a level: 10^9 "lol"s, 3 GB if expanded


def is_feed(request: Request) -> bool:
    return request.path == FEED_PATH


def answer(state: SandboxState, request: Request, fault: Fault | None) -> FakeResponse:
    """The feed as of the sandbox's clock, as `fault` (if any) changes it."""
    with state.lock:
        state.feed_requests.append(request.target)
    body = state.ecb.feed(state.clock())
    response = FakeResponse(200, {"Content-Type": XML_TYPE}, body)
    if fault is None:
        return response
    kind = fault.kind
    if kind == "feed_redirect":
        # Elsewhere: the same path on `target`; here: the same path with a query.
        where = f"{fault.target}{FEED_PATH}" if fault.target else f"{FEED_PATH}?moved=1"
        return FakeResponse(fault.status, {"Location": where})
    if kind == "feed_slow_body":
        return replace(response, pieces=max(1, fault.pieces), piece_delay=fault.delay_seconds)
    if kind == "feed_huge_body":
        return FakeResponse(
            200,
            {"Content-Type": XML_TYPE},
            stream=padded_stream(fault, state.lock, FEED_OPENING, b" -->\n"),
        )
    if kind == "feed_gzip_bomb":
        headers = {"Content-Type": XML_TYPE, "Content-Encoding": "gzip"}
        return FakeResponse(200, headers, stream=_gzip_bomb(fault, state.lock))
    if kind == "feed_comment_cube":
        return replace(response, body=_with_comment_cube(body))
    if kind == "feed_entity_bomb":
        return replace(response, body=_with_laughs(body))
    if kind == "feed_entity_rate":
        return replace(response, body=_with_entity_rate(body))
    return response


def _gzip_bomb(fault: Fault, lock: threading.Lock) -> Generator[bytes, None, None]:
    """A gzip body inflating to `size_bytes` of padding, about a thousandth of that sent;
    `sent_bytes` counts what was sent (compressed)."""
    member = gzip.compress(b" " * BOMB_MEMBER_BYTES, mtime=0)
    batch = member * BOMB_MEMBERS_PER_WRITE
    sent = inflated = 0
    try:
        while inflated < fault.size_bytes:
            yield batch
            sent += len(batch)
            inflated += BOMB_MEMBER_BYTES * BOMB_MEMBERS_PER_WRITE
    finally:
        with lock:
            fault.sent_bytes += sent


def _newest(body: bytes) -> str:
    """The day of the feed's newest publication (the first one: newest first)."""
    start = body.index(b'<Cube time="') + len(b'<Cube time="')
    return body[start : start + 10].decode()


def _with_comment_cube(body: bytes) -> bytes:
    """A publication of the newest day, USD at 9.9999, inside a comment at the end."""
    hidden = (
        f'\t<!-- <Cube time="{_newest(body)}"><Cube currency="USD" rate="9.9999"/></Cube> -->\n'
    )
    end = body.rindex(b"</gesmes:Envelope>")
    return body[:end] + hidden.encode() + body[end:]


def _with_doctype(body: bytes, declarations: str) -> bytes:
    """`body` with a DTD holding `declarations` after its XML declaration."""
    prologue_end = body.index(b"?>") + 2
    doctype = f"\n<!DOCTYPE gesmes:Envelope [\n{declarations}]>"
    return body[:prologue_end] + doctype.encode() + body[prologue_end:]


def _with_laughs(body: bytes) -> bytes:
    """Billion laughs: each entity ten of the one before, the last one used in the subject."""
    declarations = '<!ENTITY lol0 "lol">\n' + "".join(
        f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">\n'
        for level in range(1, LAUGH_LEVELS + 1)
    )
    body = body.replace(b"Reference rates", f"&lol{LAUGH_LEVELS};".encode(), 1)
    return _with_doctype(body, declarations)


def _with_entity_rate(body: bytes) -> bytes:
    """The newest publication's USD rate replaced by `&usd;`, an entity worth 9.9999."""
    start = body.index(b'<Cube currency="USD" rate="') + len(b'<Cube currency="USD" rate="')
    end = body.index(b'"', start)
    body = body[:start] + b"&usd;" + body[end:]
    return _with_doctype(body, '<!ENTITY usd "9.9999">\n')
