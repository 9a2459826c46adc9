"""The daily KPI frame: one typed definition of the rows of daily_kpi_data, and the guard
that refuses a frame breaking it before anything is written from it.

The frame is checked where it is built (daily_kpi_data, before its rows are stored) and
where it crosses back from the warehouse into an aggregation (summaries, cache, rollups),
so a negative spend or a missing column stops that client's partitions with one line naming
the client, date, column and value, and never reaches a store above.
"""

from __future__ import annotations

import warnings
from datetime import date

import pandas as pd
from dagster import BetaWarning
from dagster_pandas import PandasColumn, create_dagster_pandas_dataframe_type
from dagster_pandas.constraints import (
    ColumnConstraintViolationException,
    ColumnDTypeInSetConstraint,
    ConstraintViolationException,
    DataFrameConstraint,
)
from dagster_pandas.validation import validate_constraints

from metrics_pipeline.domain.kpis import (
    COUNT_METRICS,
    PLATFORM,
    RATIO_METRICS,
    STORED_MONEY_COLUMNS,
)
from metrics_pipeline.warehouse.resource import WarehouseResource

# Dates and money travel as Python objects (datetime.date, Decimal): exact, never floats.
OBJECTS = ColumnDTypeInSetConstraint({"object"})
KEY_COLUMNS = ("client_id", "date", "platform")
TEXT_COLUMNS = ("currency", "campaign_data", "data_source")


class _ColumnsRule(DataFrameConstraint):
    """A rule over several columns judged in one vectorised pass (a column constraint each
    would filter a copy of the frame per column, several times the cost of a cache refresh's
    own work); a breach names the first breaking column, in the rule's order, and its rows."""

    def __init__(self, columns: tuple[str, ...], description: str) -> None:
        self.columns = columns
        super().__init__(error_description=description, markdown_description=description)

    def breaches(self, values: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError

    def validate(self, dataframe: pd.DataFrame) -> None:
        breaches = self.breaches(dataframe[list(self.columns)])
        for column in breaches.columns[breaches.any()]:
            raise ColumnConstraintViolationException(
                constraint_name=self.name,
                constraint_description=self.error_description,
                column_name=column,
                offending_rows=dataframe[breaches[column]],
            )


class NonNullColumns(_ColumnsRule):
    def breaches(self, values: pd.DataFrame) -> pd.DataFrame:
        return values.isna()


class NonNegativeColumns(_ColumnsRule):
    # NULL compares as False: where a column may be NULL, NonNullColumns says so.
    def breaches(self, values: pd.DataFrame) -> pd.DataFrame:
        return values.lt(0)


# dagster-pandas marks its column API beta (its version range is pinned in pyproject.toml):
# said here once, not as a page of warnings in every process that loads the code location.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", BetaWarning)
    DAILY_KPI_COLUMNS: list[PandasColumn] = [
        PandasColumn.string_column("client_id"),
        PandasColumn("date", [OBJECTS]),
        PandasColumn.categorical_column("platform", {PLATFORM}),
        *(PandasColumn.integer_column(name) for name in COUNT_METRICS),
        *(PandasColumn(name, [OBJECTS]) for name in STORED_MONEY_COLUMNS),
        # A ratio with nothing to divide by is NULL ("no data"); any other is >= 0.
        *(PandasColumn(name) for name in RATIO_METRICS),
        *(PandasColumn.string_column(name) for name in TEXT_COLUMNS),
        PandasColumn("collected_at"),
    ]
    DAILY_KPI_RULES: list[DataFrameConstraint] = [
        NonNullColumns(
            (*KEY_COLUMNS, *COUNT_METRICS, *STORED_MONEY_COLUMNS, *TEXT_COLUMNS, "collected_at"),
            "keys, counts, money, currency, campaigns and lineage are never NULL",
        ),
        NonNegativeColumns(
            (*COUNT_METRICS, *STORED_MONEY_COLUMNS, *RATIO_METRICS),
            "counts, money and ratios are never negative",
        ),
    ]
    DailyKpiFrame = create_dagster_pandas_dataframe_type(
        name="DailyKpiFrame",
        description="Rows of daily_kpi_data: one per (client, date, platform), counts and "
        "money non-negative, keys never NULL.",
        columns=DAILY_KPI_COLUMNS,
        dataframe_constraints=DAILY_KPI_RULES,
    )
    # An empty frame read from the warehouse has no dtypes to judge: only its columns count.
    _PRESENCE_ONLY = [PandasColumn(column.name) for column in DAILY_KPI_COLUMNS]

_RULES = {
    "NonNegativeColumns": "must not be negative",
    "NonNullColumns": "must not be NULL",
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
    full = bool(len(frame))
    try:
        validate_constraints(
            frame,
            pandas_columns=DAILY_KPI_COLUMNS if full else _PRESENCE_ONLY,
            dataframe_constraints=DAILY_KPI_RULES if full else None,
        )
    except ConstraintViolationException as error:
        raise _refusal(frame, client_id, error) from None
    return frame


def read_daily_kpis(
    warehouse: WarehouseResource, client_id: str, days: list[date] | None = None
) -> pd.DataFrame:
    """A client's stored daily KPI rows of `days` (all of them when None), as every
    aggregation reads them: refused with DailyKpiFrameError when they break DailyKpiFrame."""
    scope: dict = {"client_id": client_id, "platform": PLATFORM}
    if days is not None:
        scope["date"] = days
    return refuse_bad_daily_kpis(warehouse.read("daily_kpi_data", scope), client_id)
