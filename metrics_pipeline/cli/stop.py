"""SIGINT and SIGTERM for the command line: stop within seconds, never leave a run STARTED.

The work runs on a worker thread, so the signals reach this module's handler on the main
thread (Dagster defers interrupts on the thread that executes a run, and its step retry
policy would restart an interrupted step). The first signal asks the work to stop
(`metrics_pipeline.stopping`): waits end at once, the write in progress commits or rolls
back as one transaction, no further run starts. If the work has not ended after
`grace_seconds` (a request blocked on a silent server), or a second signal arrives, the
process exits anyway: the database rolls back an open transaction when its connection
closes, and the runs still in flight are recorded CANCELED first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from metrics_pipeline.stopping import request_stop

GRACE_SECONDS = 20.0
HANDLED = (signal.SIGINT, signal.SIGTERM)
_TERMINAL: list[int] = []  # a copy of the stderr the command started with


def _keep_terminal() -> None:
    """Keep a copy of stderr as it is before any run: while a step runs, Dagster's log
    capture sends the process's stderr through a helper process, which a SIGTERM to the
    process group ends, and what is printed then is lost."""
    if not _TERMINAL:
        # No file behind sys.stderr (e.g. captured in tests): lines go to sys.stderr.
        with contextlib.suppress(AttributeError, OSError, ValueError):
            _TERMINAL.append(os.dup(sys.stderr.fileno()))


def tell(text: str) -> None:
    """Print a line about stopping where the person who stopped the command reads it."""
    if not _TERMINAL:
        print(text, file=sys.stderr, flush=True)
        return
    sys.stderr.flush()
    data = (text + "\n").encode()
    while data:
        data = data[os.write(_TERMINAL[0], data) :]


class Stopped(Exception):
    def __init__(self, signum: int, finished: bool, work_error: BaseException | None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.finished = finished  # False: the work was abandoned after the grace period
        self.work_error = work_error  # how the work ended, when it did

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # 130 for SIGINT, 143 for SIGTERM, as shells report them


def run_stoppable(
    work: Callable[[], Any],
    on_stop: Callable[[], None] = lambda: None,
    grace_seconds: float = GRACE_SECONDS,
    on_request: Callable[[], None] = request_stop,
    announce: str = "ending the run in progress; a write in progress commits or rolls back whole",
) -> Any:
    """`work()` on a worker thread; its result, its exception, or Stopped after a signal.

    On the first signal `on_request` asks the work to end (by default the process-wide stop
    flag) and `announce` says so; `on_stop` runs once the work ended or was abandoned (e.g.
    to record runs CANCELED)."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = work()
        except BaseException as exc:  # handed to the main thread
            result["error"] = exc
            # The frames' locals are let go here, on the thread that made them: among them
            # are database connections, which SQLite lets only their own thread close (freed
            # later on the main thread, each printed a traceback). The trace stays printable.
            traceback.clear_frames(exc.__traceback__)

    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        if received:  # a second signal: do not wait for the grace period
            received.append(signum)
            return
        received.append(signum)
        on_request()
        tell(f"\nStopping ({signal.Signals(signum).name}): {announce}.")

    _keep_terminal()
    previous = {s: signal.signal(s, on_signal) for s in HANDLED}
    # SIGINT is blocked while the worker starts: it, and every process it spawns (Dagster's
    # log capture starts helpers), inherit the mask, so a Ctrl-C at the terminal (sent to the
    # whole process group) reaches only this thread, which takes it with sigwait, and
    # no helper dies printing a traceback. SIGTERM stays open: Dagster ends its helpers
    # with it.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    worker = threading.Thread(target=target, name="metrics-pipeline-work", daemon=True)
    worker.start()
    try:
        deadline = None
        while worker.is_alive():
            worker.join(0.1)
            # Polled rather than sigtimedwait: that can hand back an unfilled siginfo when
            # another signal interrupts it just as it times out.
            if signal.SIGINT in signal.sigpending():
                signal.sigwait({signal.SIGINT})  # takes the pending one, at once
                on_signal(signal.SIGINT, None)
            if received and deadline is None:
                deadline = time.monotonic() + grace_seconds
            if deadline is not None and (len(received) > 1 or time.monotonic() > deadline):
                break
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # pending: to on_signal
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        on_stop()
        raise Stopped(received[0], not worker.is_alive(), result.get("error"))
    if "error" in result:
        raise result["error"]
    return result.get("value")


def exit_now(code: int) -> None:
    """End the process although worker threads are still blocked (after a stop's grace)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
