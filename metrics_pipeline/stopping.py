"""Stopping on request: one process-wide flag that long waits and the runner honour.

The command line sets it on SIGINT or SIGTERM. Code that waits (the Meta client's
backoff, throttling pauses and report polls) waits on the flag instead of sleeping, and
raises `StopRequested` as soon as it is set; the runner launches no further run. A write
in progress is never cut: it commits or rolls back as one transaction.
"""

from __future__ import annotations

import threading

_STOP = threading.Event()


class StopRequested(Exception):
    """The process was asked to stop; the current step ends without being retried."""


def request_stop() -> None:
    _STOP.set()


def reset() -> None:
    """For a process that runs the pipeline again after a stop (tests, the benchmark)."""
    _STOP.clear()


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
