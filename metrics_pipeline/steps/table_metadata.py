"""What every materialisation shows on its asset page: the stored table's column schema and
how many rows the run wrote to it.

The schema comes from the warehouse's own table definition, built once per table, so the
page shows SQL types and nullability exactly as stored (a frame's dtypes would call money
and dates "object").
"""

from __future__ import annotations

from functools import cache
from typing import Any

from dagster import (
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableConstraints,
    TableSchema,
)

from metrics_pipeline.warehouse.schema import metadata as warehouse_tables


@cache
def table_schema(table_name: str) -> TableSchema:
    table = warehouse_tables.tables[table_name]
    key = ", ".join(column.name for column in table.primary_key.columns)
    return TableSchema(
        columns=[
            TableColumn(
                name=column.name,
                type=str(column.type),
                constraints=TableColumnConstraints(nullable=bool(column.nullable)),
            )
            for column in table.columns
        ],
        constraints=TableConstraints(other=[f"primary key ({key})"] if key else []),
    )


def table_metadata(table_name: str, rows: int) -> dict[str, Any]:
    """`dagster/column_schema` and `dagster/row_count` of a materialisation of `table_name`
    (in a run over several partitions, the rows of all of them)."""
    return {
        "dagster/column_schema": MetadataValue.table_schema(table_schema(table_name)),
        "dagster/row_count": MetadataValue.int(rows),
    }
