"""Stopping on request: one process-wide flag that long waits and the runner honour.

The command line sets it on SIGINT or SIGTERM. Code that waits (the Meta client's
backoff, throttling pauses and report polls) waits on the flag instead of sleeping, and
raises `StopRequested` as soon as it is set; every step checks it between clients and
chunks of days and before it writes (`steps.partial.end_if_stopped`); the runner launches
no further run. A write in progress is never cut: it commits or rolls back as one
transaction.

The moment of the first request is kept (`requested_at`), so what the stop did can be read
back from the Dagster instance: a run that ended after it was in flight when it came.
"""

from __future__ import annotations

import threading
import time

_STOP = threading.Event()
_REQUESTED_AT: list[float] = []  # wall-clock time of the first request, as runs record theirs


class StopRequested(Exception):
    """The process was asked to stop; the current step ends without being retried."""


def request_stop() -> None:
    if not _REQUESTED_AT:
        _REQUESTED_AT.append(time.time())
    _STOP.set()


def reset() -> None:
    """For a process that runs the pipeline again after a stop (tests, the benchmark)."""
    _STOP.clear()
    _REQUESTED_AT.clear()


def requested_at() -> float | None:
    """When the first stop was asked for (seconds since the epoch), None if never."""
    return _REQUESTED_AT[0] if _REQUESTED_AT else None


def stop_requested() -> bool:
    return _STOP.is_set()


def raise_if_stopped(doing: str) -> None:
    if _STOP.is_set():
        raise StopRequested(f"stopped on request while {doing}")


def wait(seconds: float, doing: str) -> None:
    """`time.sleep(seconds)` that ends at once, raising StopRequested, when a stop is asked."""
    if seconds > 0 and _STOP.wait(seconds):
        raise StopRequested(f"stopped on request while {doing}")
    raise_if_stopped(doing)
