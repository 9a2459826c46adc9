"""Bulk inserts: PostgreSQL's COPY, everything else SQLAlchemy's batched executemany.

COPY streams a partition's rows in one round trip and skips per-row statement handling,
several times faster than multi-row INSERTs at the size of a backfill. It runs on the
caller's connection, so it stays inside the transaction that deleted the old rows.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SPECIAL = ("\\", "\t", "\n", "\r")
NULL = "\\N"


def _column_text(values: Sequence[Any]) -> Sequence[str]:
    """One column's values in COPY's text format. Column-wise, so each column's values are
    converted by one C-level `map` for their type rather than value by value."""
    kinds = {value.__class__ for value in values}
    if kinds == {str}:
        joined = "".join(values)
        if any(c in joined for c in _SPECIAL):
            return [value.translate(_ESCAPES) for value in values]
        return values
    if kinds & {str, bool}:
        return [
            NULL
            if value is None
            else value.translate(_ESCAPES)
            if value.__class__ is str
            else ("t" if value else "f")
            if value.__class__ is bool
            else str(value)
            for value in values
        ]
    if type(None) in kinds:
        return [NULL if value is None else str(value) for value in values]
    return list(map(str, values))


def copy_rows(connection: Connection, table: Table, records: Sequence[dict[str, Any]]) -> None:
    """COPY `records` in COPY's text format; the database parses each value with its
    column's type. Only text needs escaping; None is COPY's NULL."""
    names = [c.name for c in table.columns]
    # Rows as tuples in column order, then transposed: both steps run in C.
    rows = list(map(itemgetter(*names), records))
    columns = [_column_text(column) for column in zip(*rows, strict=True)]
    text = "\n".join(map("\t".join, zip(*columns, strict=True)))
    buffer = io.StringIO(text + "\n" if records else "")
    quoted = ", ".join(f'"{c}"' for c in names)
    cursor = connection.connection.cursor()
    try:
        cursor.copy_expert(f'COPY "{table.name}" ({quoted}) FROM STDIN', buffer)
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
