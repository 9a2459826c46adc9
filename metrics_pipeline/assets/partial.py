"""Finishing a partitioned step in which some (client, period) partitions failed.

The good partitions ((client, day) pairs or client keys) were written; they are recorded
as materialized so the UI and the downstream assets see them, and the step fails naming
every bad partition and why.
"""

from collections.abc import Mapping, Sequence
from datetime import date

from dagster import AssetExecutionContext, AssetMaterialization, Failure, MaterializeResult

from metrics_pipeline.partitions import multi_key


def finish(
    context: AssetExecutionContext,
    written: Sequence[tuple[str, date] | str],
    failures: list[str],
    metadata: Mapping[str, object],
    retryable: bool = False,
) -> MaterializeResult:
    """Success, or a Failure that Dagster retries only when retrying can help (`retryable`:
    Meta stayed throttled or unavailable past the client's own time budget)."""
    if not failures:
        return MaterializeResult(metadata=dict(metadata))
    for key in written:
        context.log_event(
            AssetMaterialization(
                asset_key=context.asset_key,
                partition=key if isinstance(key, str) else multi_key(*key),
                metadata={"partial_run": True},
            )
        )
    summary = "; ".join(failures[:20]) + (
        f" (+{len(failures) - 20} more)" if len(failures) > 20 else ""
    )
    raise Failure(
        allow_retries=retryable,
        description=f"{len(failures)} problem(s): {summary}",
        metadata={"problems": "\n".join(failures), "partitions_written": len(written)},
    )
