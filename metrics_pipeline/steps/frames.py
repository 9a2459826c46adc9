"""The daily KPI frame: one typed definition of the rows of daily_kpi_data, and the guard
that refuses a frame breaking it before anything is written from it.

The frame is checked where it is built (daily_kpi_data, before its rows are stored) and
where it crosses back from the warehouse into an aggregation (summaries, cache, rollups),
so a negative spend or a missing column stops that client's partitions with one line naming
the client, date, column and value, and never reaches a store above.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from dagster_pandas import PandasColumn, create_dagster_pandas_dataframe_type
from dagster_pandas.constraints import (
    ColumnConstraintViolationException,
    ColumnDTypeInSetConstraint,
    ConstraintViolationException,
    InRangeColumnConstraint,
    NonNullableColumnConstraint,
)
from dagster_pandas.validation import validate_constraints

from metrics_pipeline.domain.kpis import (
    COUNT_METRICS,
    PLATFORM,
    RATIO_METRICS,
    STORED_MONEY_COLUMNS,
)
from metrics_pipeline.warehouse.resource import WarehouseResource

INFINITY = float("inf")
# Dates and money travel as Python objects (datetime.date, Decimal): exact, never floats.
OBJECTS = ColumnDTypeInSetConstraint({"object"})


def _non_negative(*, nullable: bool = False) -> InRangeColumnConstraint:
    return InRangeColumnConstraint(0, INFINITY, ignore_missing_vals=nullable)


DAILY_KPI_COLUMNS: list[PandasColumn] = [
    PandasColumn.string_column("client_id", non_nullable=True),
    PandasColumn("date", [OBJECTS, NonNullableColumnConstraint()]),
    PandasColumn.categorical_column("platform", {PLATFORM}, non_nullable=True),
    *(PandasColumn.integer_column(name, min_value=0, non_nullable=True) for name in COUNT_METRICS),
    *(
        PandasColumn(name, [OBJECTS, NonNullableColumnConstraint(), _non_negative()])
        for name in STORED_MONEY_COLUMNS
    ),
    # A ratio with nothing to divide by is NULL ("no data"); any other is >= 0.
    *(PandasColumn(name, [_non_negative(nullable=True)]) for name in RATIO_METRICS),
    PandasColumn.string_column("currency", non_nullable=True),
    PandasColumn.string_column("campaign_data", non_nullable=True),
    PandasColumn.string_column("data_source", non_nullable=True),
    PandasColumn.exists("collected_at", non_nullable=True),
]
DailyKpiFrame = create_dagster_pandas_dataframe_type(
    name="DailyKpiFrame",
    description="Rows of daily_kpi_data: one per (client, date, platform), counts and "
    "money non-negative, keys never NULL.",
    columns=DAILY_KPI_COLUMNS,
)
# An empty frame read from the warehouse has no dtypes to judge: only its columns count.
_PRESENCE_ONLY = [PandasColumn(column.name) for column in DAILY_KPI_COLUMNS]

_RULES = {
    "InRangeColumnConstraint": "must not be negative",
    "NonNullableColumnConstraint": "must not be NULL",
    "CategoricalColumnConstraint": f"must be {PLATFORM!r}",
}


class DailyKpiFrameError(ValueError):
    """A daily KPI frame that breaks its constraints; the message is one line. `day` is the
    offending row's date, None when the whole frame is wrong (a column or dtype)."""

    def __init__(self, message: str, day: date | None = None) -> None:
        super().__init__(message)
        self.day = day


def _first_offender(error: ColumnConstraintViolationException) -> object | None:
    """Index of the first offending row, when the constraint names rows."""
    rows = error.offending_rows
    if rows is None:
        return None
    if isinstance(rows, pd.DataFrame):
        return rows.index[0] if len(rows) else None
    pairs = list(rows)  # (index, value) pairs
    return pairs[0][0] if pairs else None


def _refusal(
    frame: pd.DataFrame, client_id: str, error: ConstraintViolationException
) -> DailyKpiFrameError:
    if not isinstance(error, ColumnConstraintViolationException):  # a required column is absent
        missing = [c.name for c in DAILY_KPI_COLUMNS if c.name not in frame.columns]
        names = ", ".join(repr(name) for name in missing)
        return DailyKpiFrameError(f"client {client_id!r}: daily KPI frame without column {names}")
    column = error.column_name
    index = _first_offender(error)
    if index is None:  # a dtype: the whole column is wrong
        return DailyKpiFrameError(
            f"client {client_id!r}, column {column!r}: {error.constraint_description}"
        )
    row = frame.loc[index]
    day: date | None = row["date"] if "date" in frame.columns else None
    value = row[column]
    shown = repr(value) if isinstance(value, str) else value
    rule = _RULES.get(error.constraint_name, error.constraint_description)
    return DailyKpiFrameError(
        f"client {client_id!r}, date {day}, column {column!r}: {shown} {rule}", day
    )


def refuse_bad_daily_kpis(frame: pd.DataFrame, client_id: str) -> pd.DataFrame:
    """`frame` itself when it meets DailyKpiFrame; else DailyKpiFrameError naming the client,
    date, column and value of the first offending row."""
    columns = DAILY_KPI_COLUMNS if len(frame) else _PRESENCE_ONLY
    try:
        validate_constraints(frame, pandas_columns=columns)
    except ConstraintViolationException as error:
        raise _refusal(frame, client_id, error) from None
    return frame


def read_daily_kpis(warehouse: WarehouseResource, client_id: str, days: list[date]) -> pd.DataFrame:
    """A client's stored daily KPI rows of `days`, as every aggregation reads them: refused
    with DailyKpiFrameError when they break DailyKpiFrame."""
    scope = {"client_id": client_id, "platform": PLATFORM, "date": days}
    return refuse_bad_daily_kpis(warehouse.read("daily_kpi_data", scope), client_id)
