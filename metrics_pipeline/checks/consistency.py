"""Consistency: a stored period equals the database's own sum of its daily rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from metrics_pipeline.domain.kpis import PLATFORM, STORED_ADDITIVE_COLUMNS
from metrics_pipeline.domain.periods import Period
from metrics_pipeline.warehouse.resource import WarehouseResource


def as_number(value: object) -> Decimal:
    """A sum or stored figure as the exact decimal it stands for (NULL, an empty sum: 0)."""
    return Decimal("0") if value is None else Decimal(str(value))


ClientSpan = tuple[str, date, date]  # a client, the first and the last day summed


def clients_by_span(spans: Iterable[ClientSpan]) -> dict[tuple[date, date], set[str]]:
    """The clients asking for each distinct span of days: one grouped query each."""
    grouped: dict[tuple[date, date], set[str]] = {}
    for client_id, start, end in spans:
        grouped.setdefault((start, end), set()).add(client_id)
    return grouped


def daily_sums(
    warehouse: WarehouseResource, spans: Iterable[ClientSpan]
) -> dict[ClientSpan, dict[str, Decimal]]:
    """The database's own sums of each client's daily rows over each span of days.

    One grouped query per distinct span, whatever the number of clients sharing it: a check
    comparing every summary of a range asks for hundreds of client-spans but few spans."""
    sums: dict[ClientSpan, dict[str, Decimal]] = {}
    for (start, end), clients in clients_by_span(spans).items():
        days = Period(start, end).days() if start <= end else []
        found: dict[str, dict[str, Any]] = {}
        if days:
            frame = warehouse.totals(
                "daily_kpi_data",
                STORED_ADDITIVE_COLUMNS,
                {"client_id": sorted(clients), "platform": PLATFORM, "date": days},
                group_by=["client_id"],
            )
            found = {row["client_id"]: row for row in frame.to_dict("records")}
        for client_id in clients:
            row = found.get(client_id, {})
            sums[(client_id, start, end)] = {
                c: as_number(row.get(c)) for c in STORED_ADDITIVE_COLUMNS
            }
    return sums


def mismatches(
    stored: Mapping[str, Any], expected: Mapping[str, Decimal], label: Mapping[str, Any]
) -> list[dict[str, Any]]:
    rows = []
    for column, value in expected.items():
        if as_number(stored[column]) != value:
            rows.append({**label, "column": column, "stored": stored[column], "sum_of_days": value})
    return rows
