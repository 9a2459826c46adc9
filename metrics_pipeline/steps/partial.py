"""Finishing a partitioned step in which some (client, period) partitions failed.

The good partitions ((client, day) pairs or client keys) were written; they are recorded
as materialized so the UI and the downstream assets see them, and the step fails naming
every bad partition and why.
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date

from dagster import AssetExecutionContext, AssetMaterialization, Failure, MaterializeResult

from metrics_pipeline.partitions import multi_key
from metrics_pipeline.steps.failures import distinct_problems
from metrics_pipeline.stopping import StopRequested
from metrics_pipeline.warehouse.errors import WarehouseUnavailableError


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
                metadata={**metadata, "partial_run": True},
            )
        )
    # One line per distinct problem: a refused token names every client once, on one line.
    lines = distinct_problems(failures)
    if len(lines) == 1:
        description = f"{len(failures)} problem(s): {lines[0]}"
    else:
        shown = lines[:20] + ([f"(+{len(lines) - 20} more)"] if len(lines) > 20 else [])
        description = f"{len(failures)} problem(s), {len(lines)} distinct:\n" + "\n".join(shown)
    raise Failure(
        allow_retries=retryable,
        description=description,
        metadata={"problems": "\n".join(failures), "partitions_written": len(written)},
    )


@contextmanager
def not_retried_when_futile() -> Iterator[None]:
    """End the step at once, without the step retry policy, on what no retry in this run can
    fix: a stop asked for by a person, a warehouse that cannot be reached (missing database,
    refused credentials or host). Their one-line message becomes the step's failure."""
    try:
        yield
    except (StopRequested, WarehouseUnavailableError) as exc:
        raise Failure(description=str(exc), allow_retries=False) from None
