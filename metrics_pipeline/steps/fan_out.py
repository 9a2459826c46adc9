"""Per-client work of one step on a few threads, logged from the step's own thread.

Meta's limits are per ad account, so different clients' calls can overlap; waiting on
Meta (report jobs, pages) then costs the slowest client rather than the sum of them.
Dagster's log manager writes events to the instance, so the workers only queue their
messages and the step's thread writes them.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

T = TypeVar("T")


class QueuedLog:
    """A logger for worker threads: every message waits in a queue for the step's thread."""

    def __init__(self) -> None:
        self.messages: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()

    def info(self, message: str) -> None:
        self.messages.put(("info", message))

    def warning(self, message: str) -> None:
        self.messages.put(("warning", message))

    def error(self, message: str) -> None:
        self.messages.put(("error", message))

    def drain(self, log: Any) -> None:
        while True:
            try:
                level, message = self.messages.get_nowait()
            except queue.Empty:
                return
            getattr(log, level)(message)


def for_each_client(
    client_ids: Sequence[str],
    work: Callable[[str, QueuedLog], T],
    log: Any,
    max_workers: int,
) -> dict[str, T]:
    """`work(client_id, log)` for every client, at most `max_workers` at once.

    Results come back keyed by client in the given order. Work is expected to catch the
    errors that belong to one client; anything else is re-raised, on threads once every
    other client has finished.
    """
    queued = QueuedLog()
    if max_workers <= 1 or len(client_ids) <= 1:
        results = {}
        for client_id in client_ids:
            try:
                results[client_id] = work(client_id, queued)
            finally:
                queued.drain(log)
        return results
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="client") as pool:
        futures: dict[Future[T], str] = {
            pool.submit(work, client_id, queued): client_id for client_id in client_ids
        }
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            queued.drain(log)
    queued.drain(log)
    by_client = {client_id: future for future, client_id in futures.items()}
    return {client_id: by_client[client_id].result() for client_id in client_ids}
