"""Serialising writers of the same partitions.

Two runs writing the same (table, client) at once would otherwise both delete, then both
insert: on PostgreSQL the second insert then fails on the primary key. A transaction-scoped
advisory lock per (table, client), taken in a fixed order, makes the second writer wait
and then replace the first one's rows, so exactly one copy survives. SQLite needs nothing
more: BEGIN IMMEDIATE already gives one writer at a time.

The wait is bounded: behind a hung writer it ends after `lock_timeout` with an error that
names the table and client, instead of holding the run forever.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from metrics_pipeline.warehouse.errors import (
    LOCK_NOT_AVAILABLE,
    WarehouseTimeoutError,
    sqlstate,
)

Writes = Sequence[tuple[str, Sequence[Mapping[str, Any]]]]


def lock_targets(writes: Writes) -> dict[int, tuple[str, str]]:
    """Lock key -> (table, client) it guards; "*" for a write across every client."""
    targets: dict[int, tuple[str, str]] = {}
    for table, scopes in writes:
        for scope in scopes:
            clients = scope.get("client_id", "*")
            for client in clients if isinstance(clients, list | tuple | set) else [clients]:
                # Stable 32-bit keys (crc32), the same in every process.
                targets[zlib.crc32(f"{table}:{client}".encode())] = (table, str(client))
    return targets


def lock_keys(writes: Writes) -> list[int]:
    # Taken in sorted order so two writers never deadlock.
    return sorted(lock_targets(writes))


def _set_local(connection: Connection, **settings: str) -> None:
    """Transaction-scoped settings (SET LOCAL), ended by the commit or rollback; one trip."""
    calls = ", ".join(f"set_config('{name}', :{name}, true)" for name in settings)
    connection.execute(text(f"SELECT {calls}"), settings)


def lock_partitions(
    connection: Connection,
    writes: Writes,
    lock_timeout_seconds: int = 300,
    statement_timeout_seconds: int = 600,
) -> None:
    if connection.dialect.name != "postgresql":
        return
    targets = lock_targets(writes)
    # Only lock_timeout bounds the wait: statement_timeout, if shorter, would fire first
    # with an error that cannot say another run holds the lock.
    _set_local(connection, lock_timeout=f"{lock_timeout_seconds}s", statement_timeout="0")
    for key in sorted(targets):
        try:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        except OperationalError as error:
            if sqlstate(error) != LOCK_NOT_AVAILABLE:
                raise
            table, client = targets[key]
            whose = "every client" if client == "*" else f"client '{client}'"
            raise WarehouseTimeoutError(
                f"timed out after {lock_timeout_seconds}s waiting for the write lock on "
                f"{table} for {whose} (another run is writing it)"
            ) from None
    # Locks held: the writes themselves are bounded by the statement timeout again.
    _set_local(connection, lock_timeout="0", statement_timeout=f"{statement_timeout_seconds}s")
