"""Bulk inserts: PostgreSQL's COPY, everything else SQLAlchemy's batched executemany.

COPY streams a partition's rows in one round trip and skips per-row statement handling,
several times faster than multi-row INSERTs at the size of a backfill. It runs on the
caller's connection, so it stays inside the transaction that deleted the old rows.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_rows(connection: Connection, table: Table, records: Sequence[dict[str, Any]]) -> None:
    """COPY `records` in COPY's text format; the database parses each value with its
    column's type. Only text needs escaping; None is COPY's NULL."""
    columns = [c.name for c in table.columns]
    lines = []
    for record in records:
        lines.append(
            "\t".join(
                [
                    "\\N"
                    if (value := record[name]) is None
                    else value.translate(_ESCAPES)
                    if value.__class__ is str
                    else ("t" if value else "f")
                    if value.__class__ is bool
                    else str(value)
                    for name in columns
                ]
            )
        )
    buffer = io.StringIO("\n".join(lines) + "\n" if lines else "")
    names = ", ".join(f'"{c}"' for c in columns)
    cursor = connection.connection.cursor()
    try:
        cursor.copy_expert(f'COPY "{table.name}" ({names}) FROM STDIN', buffer)
    finally:
        cursor.close()


def insert_rows(connection: Connection, table: Table, records: Sequence[dict[str, Any]]) -> None:
    """Insert `records` (every column present) on the connection's open transaction."""
    if not records:
        return
    if connection.dialect.name == "postgresql":
        copy_rows(connection, table, records)
    else:
        connection.execute(table.insert(), list(records))
