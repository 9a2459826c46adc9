"""The warehouse resource: the only code that reads and writes the stores' tables.

Writes replace whole partitions inside one transaction: the rows of the (client, day),
(client, period) or client scopes being written are deleted and the new rows inserted
together, so a re-run never duplicates a row and a reader never sees half a partition.

On PostgreSQL nothing waits forever: connecting, each statement and each wait for another
writer's lock have a limit, and each failure is one line naming the database, or the table
and client, never the password.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field
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
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from metrics_pipeline.text import without_password
from metrics_pipeline.warehouse import schema
from metrics_pipeline.warehouse.bulk import insert_rows
from metrics_pipeline.warehouse.errors import (
    QUERY_CANCELED,
    WarehouseTimeoutError,
    WarehouseUnavailableError,
    clients_named,
    sqlstate,
)
from metrics_pipeline.warehouse.locks import lock_partitions
from metrics_pipeline.warehouse.versioning import ensure_schema

WAREHOUSE_URL_ENV = "METRICS_WAREHOUSE_URL"
# A diagnostic for crash and concurrency tests, unset in production (see `_write_probe`).
WRITE_PROBE_ENV = "METRICS_WRITE_PROBE"
WRITE_PROBE_TABLE_ENV = "METRICS_WRITE_PROBE_TABLE"
WRITE_PROBE_SECONDS_ENV = "METRICS_WRITE_PROBE_SECONDS"
# (url, connect timeout, statement timeout) -> engine: the limits are set per connection.
_ENGINES: dict[tuple[str, int, int], Engine] = {}
_ENGINES_LOCK = threading.Lock()
# The engines whose schema this process has checked (see WarehouseResource.ensure_schema).
_SCHEMA_READY: set[tuple[str, int, int]] = set()
_SCHEMA_LOCK = threading.Lock()
_PROBE_LOCK = threading.Lock()

Scope = Mapping[str, Any]  # column -> value, or column -> list of values (IN)


def default_data_dir() -> Path:
    """Where the embedded defaults keep their files: the Dagster home, else ./.metrics_pipeline."""
    home = os.environ.get("DAGSTER_HOME")
    return Path(home) if home else Path.cwd() / ".metrics_pipeline"


def sqlite_warehouse_url(folder: Path) -> str:
    """The embedded warehouse: one SQLite file in `folder` (the Dagster home)."""
    return f"sqlite:///{folder / 'metrics_warehouse.sqlite'}"


def default_warehouse_url() -> str:
    return sqlite_warehouse_url(default_data_dir())


# The databases the warehouse runs on: SQLite (embedded) and PostgreSQL through psycopg2,
# the driver dagster-postgres installs. A plain postgresql:// means psycopg2.
SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg2")
SUPPORTED_URLS = "sqlite:///<path of a file>, postgresql+psycopg2://<user>@<host>:<port>/<database>"


def url_problem(url: str) -> str | None:
    """Why `url` cannot be the warehouse (what is accepted), or None if it can. The URL is
    named with its password masked."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        shown = without_password(url)
        return f"{shown!r} is not a database URL; accepted: {SUPPORTED_URLS}"
    shown = masked(parsed)
    if parsed.drivername not in SUPPORTED_DRIVERS:
        return (
            f"{shown!r}: {parsed.drivername} is not supported, only SQLite and PostgreSQL "
            f"(psycopg2) are; accepted: {SUPPORTED_URLS}"
        )
    if parsed.get_backend_name() == "sqlite" and not parsed.database:
        return f"{shown!r} names no SQLite file; accepted: {SUPPORTED_URLS}"
    return None


def normalize_url(url: str) -> str:
    """A plain postgresql:// URL means psycopg2, the driver installed with dagster-postgres."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def masked(url: str | URL) -> str:
    """The URL with its password replaced by ***, for anything a person may read."""
    return make_url(url).render_as_string(hide_password=True)


def _where_it_is(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database or ':memory:'}"
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def _driver_reason(url: URL, error: BaseException) -> str:
    """The driver's first line without its boilerplate: 'database "x" does not exist'."""
    original = error.orig if isinstance(error, DBAPIError) else error
    lines = str(original).strip().splitlines() or [type(original).__name__]
    reason = lines[0].split(" failed: ", 1)[-1]
    reason = re.sub(r"^(FATAL|ERROR):\s*", "", reason).strip() or type(original).__name__
    if url.password:  # drivers do not echo it; should one ever, it stays out anyway
        reason = reason.replace(str(url.password), "***")
    return reason


def unavailable_error(url: str | URL, error: BaseException) -> WarehouseUnavailableError:
    """One line naming the database and where it was looked for; never the password."""
    parsed = make_url(url)
    reason, where = _driver_reason(parsed, error), _where_it_is(parsed)
    if f'"{parsed.database}"' in reason:  # e.g. database "x" does not exist
        place = f"on {where}"
    elif parsed.get_backend_name() == "sqlite":
        place = f"({where})"
    else:
        place = f'(database "{parsed.database}" on {where})'
    return WarehouseUnavailableError(f"cannot connect to the warehouse: {reason} {place}")


def _connect_args(url: URL, connect_timeout_seconds: int) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        return {"timeout": 60}  # seconds a writer waits for SQLite's one write lock
    return {"connect_timeout": connect_timeout_seconds}


def _probe(engine: Engine) -> None:
    """Connect once, so an unreachable warehouse fails as such and not mid-statement."""
    try:
        with engine.connect():
            pass
    except DBAPIError as error:
        raise unavailable_error(engine.url, error) from None


def _statement_timed_out(error: BaseException) -> bool:
    # 57014 is any cancel; only statement_timeout's says so in its message.
    return sqlstate(error) == QUERY_CANCELED and "statement timeout" in str(error)


def _ensure_schema(engine: Engine, statement_timeout_seconds: int) -> None:
    _probe(engine)
    try:
        ensure_schema(engine)
    except OperationalError as error:
        if not _statement_timed_out(error):
            raise
        raise WarehouseTimeoutError(
            f"checking the warehouse schema on {_where_it_is(engine.url)} ran past the "
            f"statement timeout of {statement_timeout_seconds}s (another process may be "
            "changing the schema)"
        ) from None


def _engine(
    url: str, connect_timeout_seconds: int = 10, statement_timeout_seconds: int = 600
) -> Engine:
    key = (url, connect_timeout_seconds, statement_timeout_seconds)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            parsed = make_url(url)
            if parsed.get_backend_name() == "sqlite":
                if parsed.database:
                    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                # isolation_level=None hands transaction control to the listeners below, so
                # every write transaction starts with BEGIN IMMEDIATE and takes the write
                # lock up front: two writers queue instead of deadlocking on an upgrade.
                engine = create_engine(
                    url,
                    connect_args=_connect_args(parsed, connect_timeout_seconds),
                    isolation_level=None,
                )

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
                engine = create_engine(
                    url,
                    pool_pre_ping=True,
                    connect_args=_connect_args(parsed, connect_timeout_seconds),
                )

                @event.listens_for(engine, "connect")
                def _statement_timeout(dbapi_connection, _record) -> None:
                    # Session default for every statement; the lock wait lifts it per
                    # transaction (see locks.py).
                    cursor = dbapi_connection.cursor()
                    cursor.execute(f"SET statement_timeout = '{int(statement_timeout_seconds)}s'")
                    cursor.close()
                    dbapi_connection.commit()

            _ENGINES[key] = engine
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


_PROBE_FIRED = threading.Event()


def _write_probe(tables: Sequence[str]) -> None:
    """With METRICS_WRITE_PROBE=<path>, hold one partition write open at its riskiest point.

    Called after the deletes and before the inserts and the commit. The first write of the
    process (of METRICS_WRITE_PROBE_TABLE, when set) creates <path>, naming the tables being
    written and the pid, then holds its open transaction and locks until the file is removed
    or METRICS_WRITE_PROBE_SECONDS (10) pass: a test can SIGKILL the process there, or start
    a second writer against it. Every other write goes on at once.
    """
    path = os.environ.get(WRITE_PROBE_ENV)
    if not path or _PROBE_FIRED.is_set():
        return  # production: one dict lookup
    wanted = os.environ.get(WRITE_PROBE_TABLE_ENV)
    if wanted and wanted not in tables:
        return
    with _PROBE_LOCK:  # of concurrent writes exactly one is held
        if _PROBE_FIRED.is_set():
            return
        _PROBE_FIRED.set()
    Path(path).write_text("\n".join([*tables, f"pid {os.getpid()}", ""]))
    deadline = time.monotonic() + float(os.environ.get(WRITE_PROBE_SECONDS_ENV, "10"))
    while time.monotonic() < deadline and os.path.exists(path):
        time.sleep(0.02)


def _clients_of(scopes: Sequence[Scope]) -> object:
    """The client(s) a set of scopes covers, for messages; None when any scope has all."""
    clients: set[str] = set()
    for scope in scopes:
        value = scope.get("client_id")
        if value is None:
            return None
        clients |= set(value) if isinstance(value, list | tuple | set | frozenset) else {value}
    return clients


class WarehouseResource(ConfigurableResource):
    """Any SQLAlchemy URL; SQLite under the Dagster home by default, PostgreSQL in production.

    Wire `url` with `EnvVar("METRICS_WAREHOUSE_URL")` (definitions.py does), so a password
    in it is read at run time and never becomes configuration shown in the UI; empty means
    the SQLite file under the Dagster home. The timeouts apply to PostgreSQL (SQLite waits
    up to 60 s for its write lock).
    """

    url: str = Field(default="", description="METRICS_WAREHOUSE_URL (may hold a password)")
    connect_timeout_seconds: int = 10
    statement_timeout_seconds: int = 600  # any one statement of the pipeline
    lock_timeout_seconds: int = 300  # waiting for another run's write lock on a partition

    @property
    def resolved_url(self) -> str:
        return normalize_url(self.url or default_warehouse_url())

    @property
    def display_url(self) -> str:
        """The resolved URL with its password masked: the one to print or log."""
        return masked(self.resolved_url)

    @property
    def engine(self) -> Engine:
        """The pooled engine for this URL; connects lazily and creates no table."""
        return _engine(*self._engine_key())

    def _engine_key(self) -> tuple[str, int, int]:
        return (self.resolved_url, self.connect_timeout_seconds, self.statement_timeout_seconds)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # The one place a run prepares its stores: before any step reads or writes them.
        self.ensure_schema()

    def ensure_schema(self) -> None:
        """Create the tables of a new warehouse, or check and migrate an existing one.

        Runs call it as their warehouse resource starts; code outside a run (the command
        line, tests, scripts) calls it before it first touches a fresh warehouse. Once per
        process and engine: later calls return at once.
        """
        key = self._engine_key()
        with _SCHEMA_LOCK:
            if key in _SCHEMA_READY:
                return
            _ensure_schema(_engine(*key), self.statement_timeout_seconds)
            _SCHEMA_READY.add(key)

    def check_reachable(self) -> None:
        """Connect once, within the connect timeout; WarehouseUnavailableError if not.

        Creates no table (a fresh connection, not the cached engine)."""
        url = make_url(self.resolved_url)
        if url.get_backend_name() == "sqlite" and url.database:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            poolclass=NullPool,
            connect_args=_connect_args(url, self.connect_timeout_seconds),
        )
        try:
            _probe(engine)
        finally:
            engine.dispose()

    @contextmanager
    def _connection(self, *, read_only: bool) -> Iterator[Connection]:
        """A connection in a transaction; SQLite's write lock only when writing."""
        engine = self.engine
        try:
            connection = engine.connect()
        except DBAPIError as error:
            raise unavailable_error(engine.url, error) from None
        with connection:
            # Set on every use: the flag lives with the pooled connection, not this use.
            connection.info["read_only"] = read_only
            with connection.begin():
                yield connection

    @contextmanager
    def _bounded(self, table_name: str, clients: object) -> Iterator[None]:
        """Turns statement_timeout's cancel into an error naming the table and client."""
        try:
            yield
        except OperationalError as error:
            if not _statement_timed_out(error):
                raise
            raise WarehouseTimeoutError(
                f"a statement on {table_name} for {clients_named(clients)} ran past the "
                f"statement timeout of {self.statement_timeout_seconds}s and was cancelled"
            ) from None

    @contextmanager
    def _reading(self, table_name: str, scope: Scope | None) -> Iterator[Connection]:
        """A connection for reads: never takes SQLite's write lock."""
        with (
            self._connection(read_only=True) as connection,
            self._bounded(table_name, _clients_of([scope or {}])),
        ):
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
        with self._connection(read_only=False) as connection:
            lock_partitions(
                connection,
                [(t.name, scopes) for t, scopes, _ in prepared],
                self.lock_timeout_seconds,
                self.statement_timeout_seconds,
            )
            for table, scopes, _ in prepared:
                with self._bounded(table.name, _clients_of(scopes)):
                    for scope in scopes:
                        connection.execute(table.delete().where(_where(table, scope)))
            # Old rows deleted, new ones not yet inserted, nothing committed.
            _write_probe([t.name for t, _, _ in prepared])
            for table, scopes, records in prepared:
                with self._bounded(table.name, _clients_of(scopes)):
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
        with self._reading(table_name, scope) as connection:
            result = connection.execute(query)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def count(self, table_name: str, scope: Scope) -> int:
        table = self.table(table_name)
        query = select(func.count()).select_from(table).where(_where(table, scope))
        with self._reading(table_name, scope) as connection:
            return int(connection.execute(query).scalar() or 0)

    def latest(self, table_name: str, column: str, scope: Scope) -> Any:
        """MAX(column) within scope, None when there is no row."""
        table = self.table(table_name)
        query = select(func.max(table.c[column])).where(_where(table, scope))
        with self._reading(table_name, scope) as connection:
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
        with self._reading(table_name, scope) as connection:
            result = connection.execute(query)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
