"""Bulk inserts: PostgreSQL's COPY, everything else SQLAlchemy's batched executemany.

COPY streams a partition's rows in one round trip and skips per-row statement handling,
several times faster than multi-row INSERTs at the size of a backfill. It runs on the
caller's connection, so it stays inside the transaction that deleted the old rows.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime
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
    # Dates and times repeat (a chunk's few days, one collection time) and their str() is
    # slow: each distinct value is converted once. Dates by value; times by identity, since
    # equal instants at different offsets have different texts.
    if kinds <= {date, type(None)}:
        texts = {value: NULL if value is None else str(value) for value in set(values)}
        return list(map(texts.__getitem__, values))
    if kinds <= {datetime, type(None)}:
        unique = {id(value): value for value in values}
        by_id = {key: NULL if value is None else str(value) for key, value in unique.items()}
        return [by_id[id(value)] for value in values]
    if type(None) in kinds:
        return [NULL if value is None else str(value) for value in values]
    return list(map(str, values))


# Rows per COPY: each batch's text is built and sent before the next, so a write's memory
# is one batch's text, not the whole partition's (a 31-day chunk is about 6,000 rows).
COPY_BATCH_ROWS = 1000


def _copy_text(names: list[str], records: Sequence[dict[str, Any]]) -> str:
    """`records` as COPY text. Rows as tuples in column order, then transposed: both steps
    run in C."""
    rows = list(map(itemgetter(*names), records))
    columns = [_column_text(column) for column in zip(*rows, strict=True)]
    return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"


def copy_rows(connection: Connection, table: Table, records: Sequence[dict[str, Any]]) -> None:
    """COPY `records` in COPY's text format, in batches of COPY_BATCH_ROWS; the database
    parses each value with its column's type. Only text needs escaping; None is COPY's NULL."""
    names = [c.name for c in table.columns]
    quoted = ", ".join(f'"{c}"' for c in names)
    cursor = connection.connection.cursor()
    try:
        for first in range(0, len(records), COPY_BATCH_ROWS):
            text = _copy_text(names, records[first : first + COPY_BATCH_ROWS])
            cursor.copy_expert(f'COPY "{table.name}" ({quoted}) FROM STDIN', io.StringIO(text))
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
