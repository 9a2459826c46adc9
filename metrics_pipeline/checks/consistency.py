"""Consistency: a stored period equals the database's own sum of its daily rows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from metrics_pipeline.domain.kpis import PLATFORM, STORED_ADDITIVE_COLUMNS
from metrics_pipeline.domain.periods import Period
from metrics_pipeline.warehouse.resource import WarehouseResource


def _as_number(value: object) -> Decimal:
    return Decimal("0") if value is None else Decimal(str(value))


def daily_sums(
    warehouse: WarehouseResource, client_id: str, start: date, end: date
) -> dict[str, Decimal]:
    days = Period(start, end).days() if start <= end else []
    if not days:
        return dict.fromkeys(STORED_ADDITIVE_COLUMNS, Decimal("0"))
    frame = warehouse.totals(
        "daily_kpi_data",
        STORED_ADDITIVE_COLUMNS,
        {"client_id": client_id, "platform": PLATFORM, "date": days},
    )
    row = frame.iloc[0].to_dict() if not frame.empty else {}
    return {c: _as_number(row.get(c)) for c in STORED_ADDITIVE_COLUMNS}


def mismatches(
    stored: Mapping[str, Any], expected: Mapping[str, Decimal], label: Mapping[str, Any]
) -> list[dict[str, Any]]:
    rows = []
    for column, value in expected.items():
        if _as_number(stored[column]) != value:
            rows.append({**label, "column": column, "stored": stored[column], "sum_of_days": value})
    return rows
