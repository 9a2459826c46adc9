"""Check results people can read in the UI: counts, the offending rows, the score."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    MultiPartitionKey,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation

from metrics_pipeline.partitions import CLIENT, DATE

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


def record_partitions(
    context,
    asset_key: AssetKey,
    check_name: str,
    offending: Sequence[Mapping[str, Any]],
    scores: Mapping[tuple[str, str], int] | None = None,
) -> None:
    """One evaluation per partition of a ranged check run, so the UI shows each partition's
    status (Dagster records a ranged check's result once, for no partition in particular)."""
    bad = {(str(r["client"]), str(r["date"])) for r in offending}
    bad_clients = {str(r["client"]) for r in offending}
    for key in context.partition_keys:
        if isinstance(key, MultiPartitionKey):
            client, day = key.keys_by_dimension[CLIENT], key.keys_by_dimension[DATE]
            passed = (client, day) not in bad
        else:
            client, day = str(key), None
            passed = client not in bad_clients
        metadata: dict[str, Any] = {}
        if scores is not None and (client, day) in scores:
            metadata["quality_score"] = scores[(client, day)]
        context.op_execution_context.log_event(
            AssetCheckEvaluation(
                asset_key=asset_key,
                check_name=check_name,
                passed=passed,
                partition=str(key),
                metadata=metadata,
                severity=AssetCheckSeverity.ERROR,
                blocking=True,
            )
        )
