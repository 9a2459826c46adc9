"""Partitions: every store is partitioned by client, and by day, week or month.

Dates in partition keys are calendar days in the client's ad-account timezone. The daily
partitions run to UTC tomorrow, the day accounts ahead of UTC already live in; a day that
has not begun in a client's timezone is refused by the assets, not collected as empty.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from dagster import (
    DailyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

CLIENT = "client"
DATE = "date"  # the time dimension of every partitioned store: a day or a period's start
# Tags of a run that covers a range of partitions (Dagster's single-run backfills).
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
HISTORY_START_ENV = "METRICS_HISTORY_START"
DEFAULT_HISTORY_START = "2025-01-01"


def history_start_problem(text: str) -> str | None:
    """Why `text` cannot be the first day of the partitions, or None if it can."""
    try:
        if len(text) != len(DEFAULT_HISTORY_START):
            raise ValueError(text)  # Dagster reads the start as YYYY-MM-DD only
        date.fromisoformat(text)
    except ValueError:
        return f"{text!r} is not a date; accepted: YYYY-MM-DD, e.g. {DEFAULT_HISTORY_START}"
    return None


@dataclass(frozen=True)
class PipelinePartitions:
    clients: StaticPartitionsDefinition
    daily: MultiPartitionsDefinition
    weekly: MultiPartitionsDefinition
    monthly: MultiPartitionsDefinition
    history_start: date
    days: DailyPartitionsDefinition  # the same days without clients (exchange rates)


def build_partitions(client_ids: list[str], history_start: str | None = None) -> PipelinePartitions:
    start = history_start or os.environ.get(HISTORY_START_ENV) or DEFAULT_HISTORY_START
    clients = StaticPartitionsDefinition(list(client_ids))
    days = DailyPartitionsDefinition(start_date=start, end_offset=2)
    return PipelinePartitions(
        clients=clients,
        daily=MultiPartitionsDefinition({DATE: days, CLIENT: clients}),
        weekly=MultiPartitionsDefinition(
            {
                # day_offset=1: weeks start on Monday (ISO weeks).
                DATE: WeeklyPartitionsDefinition(start_date=start, day_offset=1),
                CLIENT: clients,
            }
        ),
        monthly=MultiPartitionsDefinition(
            {
                DATE: MonthlyPartitionsDefinition(start_date=start),
                CLIENT: clients,
            }
        ),
        history_start=date.fromisoformat(start),
        days=days,
    )


def dates_by_client(partition_keys: list[str]) -> dict[str, list[date]]:
    """Multi-partition keys of a run -> {client: sorted dates}."""
    selected: dict[str, set[date]] = defaultdict(set)
    for key in partition_keys:
        dims = (
            key.keys_by_dimension
            if isinstance(key, MultiPartitionKey)
            else dict(zip((CLIENT, DATE), str(key).split("|"), strict=True))
        )
        selected[dims[CLIENT]].add(date.fromisoformat(dims[DATE]))
    return {client: sorted(days) for client, days in sorted(selected.items())}


def contiguous_ranges(days: list[date]) -> list[tuple[date, date]]:
    ranges: list[tuple[date, date]] = []
    for day in sorted(days):
        if ranges and (day - ranges[-1][1]).days == 1:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def multi_key(client_id: str, day: date) -> MultiPartitionKey:
    return MultiPartitionKey({CLIENT: client_id, DATE: day.isoformat()})


def day_range_tags(client_id: str, first: date, last: date) -> dict[str, str]:
    """The run tags that make one run of a client's days `first`..`last` (a ranged run)."""
    return {RANGE_START: f"{client_id}|{first}", RANGE_END: f"{client_id}|{last}"}


def client_blocks(ordered: Sequence[str], selected: set[str]) -> list[list[str]]:
    """Selected clients as runs of neighbours in partition order (one key range each)."""
    blocks: list[list[str]] = []
    previous = None
    for position, client_id in enumerate(ordered):
        if client_id not in selected:
            continue
        if blocks and previous == position - 1:
            blocks[-1].append(client_id)
        else:
            blocks.append([client_id])
        previous = position
    return blocks
