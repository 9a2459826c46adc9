"""How a TRANSPORT_FAULTS fault changes the way an answer travels.

The fake only describes it on the `FakeResponse` (a delay, a hold, slow pieces, a cut, an
endless stream); the HTTP transport carries it out.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import replace

from metrics_pipeline.sandbox.faults import Fault
from metrics_pipeline.sandbox.graph.messages import JSON_TYPE, FakeResponse

BAD_GATEWAY = b"<html><body>502 Bad Gateway</body></html>"
HUGE_BLOCK = 65536


def bad_gateway() -> FakeResponse:
    """http_502: a proxy's HTML page instead of the Graph API's JSON."""
    return FakeResponse(502, {"Content-Type": "text/html"}, BAD_GATEWAY)


def redirect(fault: Fault, target: str) -> FakeResponse:
    """redirect: HTTP `fault.status` sending the request (`target`: path and query) on to
    `fault.target`, a server that is not Meta's."""
    return FakeResponse(fault.status, {"Location": f"{fault.target or ''}{target}"})


def delivered(fault: Fault | None, response: FakeResponse, lock: threading.Lock) -> FakeResponse:
    """`response` as `fault` makes it travel; an error answer travels intact but for delay."""
    if fault is None:
        return response
    if fault.kind == "slow":
        return replace(response, delay_seconds=fault.delay_seconds)
    if fault.kind == "hold":
        return replace(response, hold=lambda: _hold(fault, lock))
    if response.status != 200:
        return response
    half = max(1, len(response.body) // 2)
    if fault.kind == "drop":  # the full length announced, half sent, the connection dropped
        return replace(response, cut_at=half)
    if fault.kind == "truncate":  # complete-looking, but not valid JSON
        return replace(response, body=response.body[:half])
    if fault.kind == "slow_body":  # each piece in time, the whole far too late
        return replace(response, pieces=max(1, fault.pieces), piece_delay=fault.delay_seconds)
    if fault.kind == "huge_body":
        return FakeResponse(200, {"Content-Type": JSON_TYPE}, stream=_huge_body(fault, lock))
    return response


def _hold(fault: Fault, lock: threading.Lock) -> None:
    """Wait until the fault is cleared (or `delay_seconds`), counted in `fault.held`: a test
    sees how many callers are inside a request at once, for as long as it needs to look."""
    with lock:
        fault.held += 1
    try:
        fault.released.wait(fault.delay_seconds)
    finally:
        with lock:
            fault.held -= 1


def _huge_body(fault: Fault, lock: threading.Lock) -> Generator[bytes, None, None]:
    """A valid JSON body of `size_bytes`."""
    return padded_stream(fault, lock, b'{"data": [], "padding": "', b'"}')


def padded_stream(
    fault: Fault, lock: threading.Lock, opening: bytes, closing: bytes
) -> Generator[bytes, None, None]:
    """`opening`, `size_bytes` of padding, `closing`; counts into `fault.sent_bytes` the
    blocks the peer accepted (each is counted when the next is asked for) before it hung
    up."""
    sent = 0
    try:
        yield opening
        while sent < fault.size_bytes:
            yield b"x" * HUGE_BLOCK
            sent += HUGE_BLOCK
        yield closing
    finally:
        with lock:
            fault.sent_bytes += sent
