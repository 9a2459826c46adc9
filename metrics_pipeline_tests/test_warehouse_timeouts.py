"""The database never hangs a run: a lock wait, a statement and a connection attempt each
end within their limit, in one line naming the table and client or the database, never
the password. PostgreSQL only (SQLite has one writer and its own 60 s busy wait)."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from dagster import EnvVar
from sqlalchemy.engine import make_url

from metrics_pipeline.definitions import default_resources
from metrics_pipeline.warehouse.errors import WarehouseTimeoutError, WarehouseUnavailableError
from metrics_pipeline.warehouse.locks import lock_keys
from metrics_pipeline.warehouse.resource import WAREHOUSE_URL_ENV, WarehouseResource
from metrics_pipeline_tests.conftest import require_postgres
from metrics_pipeline_tests.helpers import COUNTS

postgres_only = pytest.mark.parametrize("warehouse_url", ["postgresql"], indirect=True)
DAY = date(2025, 3, 4)
NOT_THE_PASSWORD = "masked-in-messages"  # a stand-in the messages must never show


def daily_row(client_id: str, spend: str) -> dict:
    return {
        "client_id": client_id,
        "date": DAY,
        "platform": "meta",
        "total_spend": Decimal(spend),
        "reservation_value": Decimal("0"),
        **dict.fromkeys(COUNTS, 0),
        "currency": "EUR",
        "campaign_data": "{}",
        "data_source": "meta_insights",
        "collected_at": datetime(2025, 3, 5, tzinfo=UTC),
    }


def stored_spend(url: str, client_id: str) -> list[Decimal]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT total_spend FROM daily_kpi_data WHERE client_id = :c"),
            {"c": client_id},
        ).scalars()
        spends = list(rows)
    engine.dispose()
    return spends


@contextmanager
def holding(url: str, statement: str, params: dict | None = None) -> Iterator[None]:
    """Another session runs `statement` in a transaction it keeps open: a hung writer.

    The server ends that session after 8 s idle, so a missing timeout fails the test
    (nothing raised) instead of hanging it."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection, connection.begin():
            connection.execute(sa.text("SET LOCAL idle_in_transaction_session_timeout = '8s'"))
            connection.execute(sa.text(statement), params or {})
            yield
    finally:
        engine.dispose()


def unique_client() -> str:
    # Advisory locks span the whole server: a name of its own avoids other tests' keys.
    return f"client_{uuid.uuid4().hex[:8]}"


@postgres_only
@pytest.mark.parametrize(("lock_s", "statement_s"), [(1, 600), (2, 1)])
def test_a_write_behind_another_writers_lock_times_out_naming_table_and_client(
    warehouse_url, lock_s, statement_s
):
    client = unique_client()
    scope = {"client_id": client, "date": DAY}
    warehouse = WarehouseResource(
        url=warehouse_url, lock_timeout_seconds=lock_s, statement_timeout_seconds=statement_s
    )
    warehouse.ensure_schema()
    warehouse.replace("daily_kpi_data", [scope], [daily_row(client, "1.00")])
    [key] = lock_keys([("daily_kpi_data", [scope])])
    with holding(warehouse_url, "SELECT pg_advisory_xact_lock(:key)", {"key": key}):
        started = time.monotonic()
        with pytest.raises(WarehouseTimeoutError) as error:
            warehouse.replace("daily_kpi_data", [scope], [daily_row(client, "2.00")])
        waited = time.monotonic() - started
    # The lock's own limit ends the wait, even when the statement limit is shorter.
    assert str(error.value) == (
        f"timed out after {lock_s}s waiting for the write lock on daily_kpi_data for "
        f"client '{client}' (another run is writing it)"
    )
    assert lock_s - 0.2 <= waited < lock_s + 3
    assert stored_spend(warehouse_url, client) == [Decimal("1.00")]


@postgres_only
def test_a_blocked_statement_times_out_naming_the_table_and_client(warehouse_url):
    client = unique_client()
    scope = {"client_id": client, "date": DAY}
    warehouse = WarehouseResource(url=warehouse_url, statement_timeout_seconds=1)
    warehouse.ensure_schema()
    warehouse.replace("daily_kpi_data", [scope], [daily_row(client, "1.00")])
    with holding(warehouse_url, "LOCK TABLE daily_kpi_data"):
        started = time.monotonic()
        with pytest.raises(WarehouseTimeoutError) as write_error:
            warehouse.replace("daily_kpi_data", [scope], [daily_row(client, "2.00")])
        with pytest.raises(WarehouseTimeoutError) as read_error:
            warehouse.read("daily_kpi_data", {"client_id": client})
        waited = time.monotonic() - started
    for error in (write_error, read_error):
        assert str(error.value) == (
            f"a statement on daily_kpi_data for client '{client}' ran past the statement "
            "timeout of 1s and was cancelled"
        )
    assert waited < 6
    assert stored_spend(warehouse_url, client) == [Decimal("1.00")]


def _server_url() -> sa.URL:
    engine = require_postgres()
    url = engine.url
    engine.dispose()
    return url


def _assert_one_clean_line(error: BaseException) -> None:
    assert NOT_THE_PASSWORD not in str(error) and NOT_THE_PASSWORD not in repr(error)
    assert error.__cause__ is None and error.__suppress_context__  # no driver traceback
    assert "\n" not in str(error)


@pytest.mark.parametrize("how", ["first use", "check_reachable"])
def test_a_missing_database_is_unavailable_naming_it_within_seconds(how):
    server = _server_url()
    url = server.set(database="no_such_db", password=NOT_THE_PASSWORD)
    warehouse = WarehouseResource(url=url.render_as_string(hide_password=False))
    started = time.monotonic()
    with pytest.raises(WarehouseUnavailableError) as error:
        if how == "first use":
            warehouse.read("daily_kpi_data")
        else:
            warehouse.check_reachable()
    assert time.monotonic() - started < 5
    assert str(error.value) == (
        'cannot connect to the warehouse: database "no_such_db" does not exist on '
        f"{server.host}:{server.port or 5432}"
    )
    _assert_one_clean_line(error.value)


def test_a_refused_port_is_unavailable_naming_database_host_and_port():
    url = _server_url().set(host="127.0.0.1", port=1, password=NOT_THE_PASSWORD)
    warehouse = WarehouseResource(url=url.render_as_string(hide_password=False))
    started = time.monotonic()
    with pytest.raises(WarehouseUnavailableError) as error:
        warehouse.check_reachable()
    assert time.monotonic() - started < 5
    message = str(error.value)
    assert message.startswith("cannot connect to the warehouse: ")
    assert message.endswith(f'(database "{url.database}" on 127.0.0.1:1)')
    _assert_one_clean_line(error.value)


def test_a_server_that_never_answers_gives_up_after_the_connect_timeout():
    # A port that takes the connection and then says nothing, like a hung server.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        url = _server_url().set(host="127.0.0.1", port=port)
        warehouse = WarehouseResource(
            url=url.render_as_string(hide_password=False), connect_timeout_seconds=1
        )
        started = time.monotonic()
        with pytest.raises(WarehouseUnavailableError) as error:
            warehouse.check_reachable()
        waited = time.monotonic() - started
    assert 0.9 <= waited < 4
    assert str(error.value).startswith("cannot connect to the warehouse: timeout expired")
    assert str(error.value).endswith(f'(database "{url.database}" on 127.0.0.1:{port})')


@postgres_only
def test_check_reachable_creates_nothing(warehouse_url):
    WarehouseResource(url=warehouse_url).check_reachable()
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as connection:
        assert sa.inspect(connection).get_table_names() == []
    engine.dispose()


def test_the_url_is_read_from_the_environment_at_run_time_and_shown_masked(monkeypatch):
    secret_url = f"postgresql://metrics:{NOT_THE_PASSWORD}@db.example.test:5432/metrics"
    monkeypatch.setenv(WAREHOUSE_URL_ENV, secret_url)
    configured = default_resources()["warehouse"]
    # The configuration holds the variable's name, never its value.
    assert isinstance(configured.url, EnvVar)
    assert configured.url.env_var_name == WAREHOUSE_URL_ENV
    # Dagster reads the variable when a run starts; so does this.
    warehouse = WarehouseResource(url=configured.url.get_value())
    assert make_url(warehouse.resolved_url).password == NOT_THE_PASSWORD
    assert warehouse.display_url == "postgresql+psycopg2://metrics:***@db.example.test:5432/metrics"
    explicit = WarehouseResource(url="sqlite:///elsewhere.sqlite")
    assert explicit.resolved_url == "sqlite:///elsewhere.sqlite"
