"""The KPIs a materialisation shows as numbers, so Dagster's asset plots draw their trend:
spend, reservations, ROAS and CPA of a stored KPI row (its own values, never recomputed),
and the portfolio's latest complete week as a table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

# (metadata key, stored column): what the plots show, in this order.
PLOTTED = (
    ("spend", "total_spend"),
    ("reservations", "reservations"),
    ("roas", "roas"),
    ("cpa", "average_cpa"),
)


def _number(value: Any) -> float | int | None:
    if value is None or value != value:  # NULL (NaN as pandas reads it): no point drawn
        return None
    return int(value) if isinstance(value, int) else float(value)


def kpi_metadata(row: Mapping[str, Any]) -> dict[str, Any]:
    """The plotted KPIs of one stored row; a ratio with nothing to divide by is left out."""
    found: dict[str, Any] = {}
    for key, column in PLOTTED:
        number = _number(row[column])
        if number is None:
            continue
        found[key] = (
            MetadataValue.int(number)
            if key == "reservations"
            else MetadataValue.float(float(number))
        )
    return found


WEEK_SCHEMA = TableSchema(
    columns=[
        TableColumn("client", "string"),
        TableColumn("spend", "float"),
        TableColumn("reservations", "int"),
        TableColumn("roas", "float"),
        TableColumn("cpa", "float"),
    ]
)


def week_table(rows: Sequence[Mapping[str, Any]]) -> MetadataValue:
    """One line per client of a week's portfolio rows, the total ('*') last."""
    ordered = sorted(rows, key=lambda r: (r["client_id"] == "*", r["client_id"]))
    return MetadataValue.table(
        records=[
            TableRecord(
                {
                    "client": "all clients" if r["client_id"] == "*" else r["client_id"],
                    **{key: _number(r[column]) for key, column in PLOTTED},
                }
            )
            for r in ordered
        ],
        schema=WEEK_SCHEMA,
    )


def portfolio_metadata(rows: Sequence[Mapping[str, Any]], today: date) -> dict[str, Any]:
    """The agency total of the newest whole day before `today` (plotted) and the newest
    ISO week that ended before `today` (a table), from the rows portfolio_kpis wrote."""
    found: dict[str, Any] = {}
    days = [r for r in rows if r["period_type"] == "day" and r["period_start"] < today]
    totals = [r for r in days if r["client_id"] == "*"]
    if totals:
        newest = max(totals, key=lambda r: r["period_start"])
        found.update(kpi_metadata(newest))
        found["day"] = str(newest["period_start"])
    weeks = [r for r in rows if r["period_type"] == "week" and r["period_end"] < today]
    if weeks:
        start = max(r["period_start"] for r in weeks)
        found["latest_week"] = week_table([r for r in weeks if r["period_start"] == start])
        found["latest_week_start"] = str(start)
    return found
