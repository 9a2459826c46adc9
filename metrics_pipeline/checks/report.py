"""Check results people can read in the UI: counts, the offending rows, the score."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
)

MAX_ROWS_SHOWN = 50


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "(none)"
    # Every column any shown row has, in first-seen order: rows of one check may differ.
    columns = list(dict.fromkeys(c for row in rows[:MAX_ROWS_SHOWN] for c in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows[:MAX_ROWS_SHOWN]:
        cells = (str(row.get(c, "")).replace("|", "/") for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    if len(rows) > MAX_ROWS_SHOWN:
        lines.append(f"\n... and {len(rows) - MAX_ROWS_SHOWN} more")
    return "\n".join(lines)


def json_safe(value: Any) -> Any:
    """`value` as plain JSON: exact Decimals as strings, dates in ISO, no numpy/pandas scalars.

    Offending rows come straight from the database and pandas, and a check result whose
    metadata cannot be serialised crashes the check instead of reporting the rows.
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)  # the exact stored value; a float could round it
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, datetime | date | time):  # pd.Timestamp is a datetime
        return value.isoformat()
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def result(
    passed: bool,
    offending: Sequence[Mapping[str, Any]],
    *,
    covered: Mapping[str, Sequence[Any]] | None = None,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
    description: str | None = None,
    **figures: Any,
) -> AssetCheckResult:
    """A check result; `covered` ({client: [dates or labels]}) lets alerts tell a recovery."""
    metadata: dict[str, Any] = {
        "covered": MetadataValue.json(
            {client: sorted(str(d) for d in days) for client, days in (covered or {}).items()}
        ),
        "offending_count": len(offending),
        "offending_rows": MetadataValue.md(markdown_table(list(offending))),
        # Machine-readable for alerts: the first rows, each naming client and date.
        "offending_json": MetadataValue.json(json_safe(list(offending)[:MAX_ROWS_SHOWN])),
        **figures,
    }
    return AssetCheckResult(
        passed=passed, severity=severity, metadata=metadata, description=description
    )
