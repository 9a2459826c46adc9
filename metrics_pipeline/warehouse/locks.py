"""Serialising writers of the same partitions.

Two runs writing the same (table, client) at once would otherwise both delete, then both
insert: on PostgreSQL the second insert then fails on the primary key. A transaction-scoped
advisory lock per (table, client), taken in a fixed order, makes the second writer wait
and then replace the first one's rows, so exactly one copy survives. SQLite needs nothing
more: BEGIN IMMEDIATE already gives one writer at a time.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, text


def lock_keys(writes: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> list[int]:
    names = set()
    for table, scopes in writes:
        for scope in scopes:
            clients = scope.get("client_id", "*")
            for client in clients if isinstance(clients, list | tuple | set) else [clients]:
                names.add(f"{table}:{client}")
    # Stable 32-bit keys (crc32), taken in sorted order so two writers never deadlock.
    return sorted({zlib.crc32(name.encode()) for name in names})


def lock_partitions(
    connection: Connection, writes: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]
) -> None:
    if connection.dialect.name != "postgresql":
        return
    for key in lock_keys(writes):
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
