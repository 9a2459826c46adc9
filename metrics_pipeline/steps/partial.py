"""Finishing a partitioned step in which some (client, period) partitions failed.

The good partitions ((client, day) pairs or client keys) were written; they are recorded
as materialized so the UI and the downstream assets see them, and the step fails naming
every bad partition and why.
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import NoReturn

from dagster import AssetExecutionContext, AssetMaterialization, Failure, MaterializeResult

from metrics_pipeline.partitions import multi_key
from metrics_pipeline.steps.failures import distinct_problems
from metrics_pipeline.stopping import StopRequested, stop_requested
from metrics_pipeline.warehouse.errors import WarehouseUnavailableError

Written = Sequence[tuple[str, date] | str]


def record_written(
    context: AssetExecutionContext, written: Written, metadata: Mapping[str, object]
) -> None:
    """Record the partitions a step wrote before it failed as materialized (`partial_run`)."""
    for key in written:
        context.log_event(
            AssetMaterialization(
                asset_key=context.asset_key,
                partition=key if isinstance(key, str) else multi_key(*key),
                metadata={**metadata, "partial_run": True},
            )
        )


def finish(
    context: AssetExecutionContext,
    written: Written,
    failures: list[str],
    metadata: Mapping[str, object],
    retryable: bool = False,
) -> MaterializeResult:
    """Success, or a Failure that Dagster retries only when retrying can help (`retryable`:
    Meta stayed throttled or unavailable past the client's own time budget)."""
    if not failures:
        return MaterializeResult(metadata=dict(metadata))
    record_written(context, written, metadata)
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


def end_if_stopped(
    context: AssetExecutionContext,
    doing: str,
    written: Written = (),
    metadata: Mapping[str, object] | None = None,
) -> None:
    """Where a step may end on a stop request (between clients or chunks of days, before a
    write): when a stop was asked for, end the step now, see `end_stopped`."""
    if stop_requested():
        end_stopped(context, doing, written, metadata)


def end_stopped(
    context: AssetExecutionContext,
    doing: str,
    written: Written = (),
    metadata: Mapping[str, object] | None = None,
) -> NoReturn:
    """End a step that was asked to stop: the partitions it wrote (each whole, in its own
    transaction) are recorded as materialized, nothing else is written, and the step fails
    without the step retry policy (the runner records its run CANCELED)."""
    record_written(context, written, metadata or {})
    raise Failure(
        description=f"stopped on request while {doing}; "
        f"{len(written)} partition(s) written before the stop",
        metadata={"partitions_written": len(written)},
        allow_retries=False,
    )
