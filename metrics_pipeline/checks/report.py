"""Check results people can read in the UI: counts, the offending rows, the score."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
)

MAX_ROWS_SHOWN = 50


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "(none)"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows[:MAX_ROWS_SHOWN]:
        lines.append("| " + " | ".join(str(row[c]).replace("|", "/") for c in columns) + " |")
    if len(rows) > MAX_ROWS_SHOWN:
        lines.append(f"\n... and {len(rows) - MAX_ROWS_SHOWN} more")
    return "\n".join(lines)


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
        "offending_json": MetadataValue.json(list(offending)[:MAX_ROWS_SHOWN]),
        **figures,
    }
    return AssetCheckResult(
        passed=passed, severity=severity, metadata=metadata, description=description
    )
