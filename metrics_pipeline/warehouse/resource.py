"""The warehouse resource: the only code that reads and writes the stores' tables.

Writes replace whole partitions inside one transaction: the rows of the (client, day),
(client, period) or client scopes being written are deleted and the new rows inserted
together, so a re-run never duplicates a row and a reader never sees half a partition.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import ConfigurableResource
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    create_engine,
    event,
    func,
    select,
    true,
)
from sqlalchemy.engine import make_url

from metrics_pipeline.warehouse import schema
from metrics_pipeline.warehouse.bulk import insert_rows
from metrics_pipeline.warehouse.locks import lock_partitions
from metrics_pipeline.warehouse.versioning import ensure_schema

WAREHOUSE_URL_ENV = "METRICS_WAREHOUSE_URL"
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()

Scope = Mapping[str, Any]  # column -> value, or column -> list of values (IN)


def default_data_dir() -> Path:
    """Where the embedded defaults keep their files: the Dagster home, else ./.metrics_pipeline."""
    home = os.environ.get("DAGSTER_HOME")
    return Path(home) if home else Path.cwd() / ".metrics_pipeline"


def default_warehouse_url() -> str:
    return f"sqlite:///{default_data_dir() / 'metrics_warehouse.sqlite'}"


def normalize_url(url: str) -> str:
    """A plain postgresql:// URL means psycopg2, the driver installed with dagster-postgres."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def _engine(url: str) -> Engine:
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            parsed = make_url(url)
            if parsed.get_backend_name() == "sqlite":
                if parsed.database:
                    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                # isolation_level=None hands transaction control to the listeners below, so
                # every write transaction starts with BEGIN IMMEDIATE and takes the write
                # lock up front: two writers queue instead of deadlocking on an upgrade.
                engine = create_engine(url, connect_args={"timeout": 60}, isolation_level=None)

                @event.listens_for(engine, "connect")
                def _sqlite_pragmas(dbapi_connection, _record) -> None:
                    cursor = dbapi_connection.cursor()
                    cursor.execute("PRAGMA journal_mode=WAL")
                    cursor.execute("PRAGMA busy_timeout=60000")
                    cursor.close()

                @event.listens_for(engine, "begin")
                def _begin_immediate(connection) -> None:
                    reading = connection.info.get("read_only")
                    connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")
            else:
                engine = create_engine(url, pool_pre_ping=True)
            ensure_schema(engine)
            _ENGINES[url] = engine
        return engine


def _where(table: Table, scope: Scope):
    if not scope:
        return true()  # the whole table
    clauses = []
    for column, value in scope.items():
        if isinstance(value, list | tuple | set | frozenset):
            clauses.append(table.c[column].in_(list(value)))
        else:
            clauses.append(table.c[column] == value)
    return and_(*clauses)


def _records(
    table: Table, rows: Iterable[Mapping[str, Any]] | pd.DataFrame
) -> list[dict[str, Any]]:
    """Rows with every column of `table` (absent ones NULL); an unknown column is a bug."""
    source = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)
    columns = [c.name for c in table.columns]
    known = set(columns)
    records = []
    for row in source:
        if row.keys() == known:
            records.append(row)  # already complete: no copy
            continue
        unknown = set(row) - known
        if unknown:
            raise ValueError(f"{table.name}: unknown column(s) {sorted(unknown)}")
        records.append({c: row.get(c) for c in columns})
    return records


class WarehouseResource(ConfigurableResource):
    """Any SQLAlchemy URL; SQLite under the Dagster home by default, PostgreSQL in production."""

    url: str = ""

    @property
    def resolved_url(self) -> str:
        return normalize_url(self.url or default_warehouse_url())

    @property
    def engine(self) -> Engine:
        return _engine(self.resolved_url)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection for reads: never takes SQLite's write lock."""
        with self.engine.connect() as connection:
            connection.info["read_only"] = True
            yield connection

    def table(self, name: str) -> Table:
        return schema.metadata.tables[name]

    def replace(
        self,
        table_name: str,
        scopes: Sequence[Scope],
        rows: Iterable[Mapping[str, Any]] | pd.DataFrame,
    ) -> int:
        """Atomically delete every scope's rows and insert `rows`; returns rows written."""
        return self.replace_many([(table_name, scopes, rows)])[0]

    def replace_many(self, writes: Sequence[tuple[str, Sequence[Scope], Any]]) -> list[int]:
        """Several tables' replacements in ONE transaction (all of them or none)."""
        prepared = [
            (self.table(name), scopes, _records(self.table(name), rows))
            for name, scopes, rows in writes
        ]
        with self.engine.begin() as connection:
            lock_partitions(connection, [(t.name, scopes) for t, scopes, _ in prepared])
            for table, scopes, records in prepared:
                for scope in scopes:
                    connection.execute(table.delete().where(_where(table, scope)))
                insert_rows(connection, table, records)
        return [len(records) for _, _, records in prepared]

    def totals(
        self,
        table_name: str,
        columns: Sequence[str],
        scope: Scope,
        group_by: Sequence[str] = (),
        where: Callable[[Table], ColumnElement[bool]] | None = None,
    ) -> pd.DataFrame:
        """SUM of `columns` per `group_by`, computed by the database itself, over the rows
        in `scope` (and meeting `where`, a condition on the table, if given)."""
        table = self.table(table_name)
        query = select(
            *(table.c[c] for c in group_by), *(func.sum(table.c[c]).label(c) for c in columns)
        )
        query = query.where(_where(table, scope))
        if where is not None:
            query = query.where(where(table))
        if group_by:
            query = query.group_by(*(table.c[c] for c in group_by))
        with self._reading() as connection:
            result = connection.execute(query)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def count(self, table_name: str, scope: Scope) -> int:
        table = self.table(table_name)
        query = select(func.count()).select_from(table).where(_where(table, scope))
        with self._reading() as connection:
            return int(connection.execute(query).scalar() or 0)

    def latest(self, table_name: str, column: str, scope: Scope) -> Any:
        """MAX(column) within scope, None when there is no row."""
        table = self.table(table_name)
        query = select(func.max(table.c[column])).where(_where(table, scope))
        with self._reading() as connection:
            return connection.execute(query).scalar()

    def read(
        self,
        table_name: str,
        scope: Scope | None = None,
        order_by: Sequence[str] = (),
        columns: Sequence[str] = (),
        where: Callable[[Table], ColumnElement[bool]] | None = None,
    ) -> pd.DataFrame:
        """Rows in `scope` (all columns unless `columns`), optionally filtered by `where`,
        a condition on the table that the database evaluates."""
        table = self.table(table_name)
        query = select(*(table.c[c] for c in columns)) if columns else select(table)
        if scope:
            query = query.where(_where(table, scope))
        if where is not None:
            query = query.where(where(table))
        if order_by:
            query = query.order_by(*(table.c[c] for c in order_by))
        with self._reading() as connection:
            result = connection.execute(query)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
