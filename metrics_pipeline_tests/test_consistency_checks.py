"""A stored period that disagrees with the database's sum of its days fails its consistency
check with the offending row, blocks the run, and is alerted once.

Each test makes the database store one wrong figure when the pipeline writes a row, as a
bad write would, and sums the days itself with its own SQL: a client's daily rows, or for
the portfolio its converted days (every client's for the total row).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    build_sensor_context,
    materialize,
)

from metrics_pipeline.automation.notifier import AlertNotifier
from metrics_pipeline.catalog import build_catalog
from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline_tests.conftest import NOW, make_instance, make_resources
from metrics_pipeline_tests.receivers import webhook_receiver

CLIENTS = ("harbour_view_hotel", "canyon_lodge")
CLIENT = "canyon_lodge"  # the client whose row is corrupted; the other one stays right
TOTAL = "*"  # the portfolio's row over all clients
DAILY = "FROM daily_kpi_data WHERE client_id = :client AND date >= :start AND date <= :end"
CONVERTED_DAYS = (
    "FROM portfolio_kpis WHERE period_type = 'day' AND client_id = :client "
    "AND period_start >= :start AND period_start <= :end"
)
ALL_CLIENTS_CONVERTED_DAYS = CONVERTED_DAYS.replace("client_id = :client", "client_id <> :client")
# To yesterday, from nine days back or the previous month's last day if earlier: a whole
# ISO week, a month that has ended (its summary sums the days stored) and the week to date.
WINDOW = (
    min(NOW.date() - timedelta(days=9), NOW.date().replace(day=1) - timedelta(days=1)),
    NOW.date() - timedelta(days=1),
)


@dataclass(frozen=True)
class Store:
    asset: AssetKey
    table: str
    key_columns: tuple[str, ...]  # the row's primary key besides client_id
    where: str  # narrows the table to this store's rows
    start: str
    end: str
    column: str
    delta: Decimal
    label: str  # the column naming the row in alerts; "" when it is the constant "cache"
    client: str = CLIENT
    days: str = DAILY  # FROM and WHERE of the days the row sums
    partitioned: bool = True
    label_prefix: str = ""  # the column whose value comes first in the label, if any

    @property
    def check(self) -> AssetCheckKey:
        return AssetCheckKey(self.asset, "consistency")

    @property
    def check_name(self) -> str:
        return f"{self.asset.to_user_string()}:consistency"


STORES = {
    "weekly": Store(
        AssetKey(["campaign_summaries", "weekly"]),
        "campaign_summaries",
        ("summary_type", "summary_date"),
        "summary_type = 'weekly'",
        "summary_date",
        "period_end",
        "total_spend",
        Decimal("1.23"),
        "summary_date",
    ),
    "monthly": Store(
        AssetKey(["campaign_summaries", "monthly"]),
        "campaign_summaries",
        ("summary_type", "summary_date"),
        "summary_type = 'monthly'",
        "summary_date",
        "period_end",
        "total_spend",
        Decimal("-0.07"),
        "summary_date",
    ),
    "cache": Store(
        AssetKey("current_week_cache"),
        "current_week_cache",
        (),
        "1 = 1",
        "date_range_start",
        "date_range_end",
        "reservations",
        Decimal("3"),
        "",
    ),
    "rollups": Store(
        AssetKey("client_kpi_rollups"),
        "client_kpi_rollups",
        ("rollup_window",),
        "rollup_window = 'last_7_days'",
        "window_start",
        "window_end",
        "total_spend",
        Decimal("10.00"),
        "rollup_window",
    ),
    "portfolio-week": Store(
        AssetKey("portfolio_kpis"),
        "portfolio_kpis",
        ("period_type", "period_start"),
        "period_type = 'week'",
        "period_start",
        "period_end",
        "total_spend",
        Decimal("0.01"),
        "period_start",
        days=CONVERTED_DAYS,
        partitioned=False,
        label_prefix="period_type",
    ),
    "portfolio-total-day": Store(
        AssetKey("portfolio_kpis"),
        "portfolio_kpis",
        ("period_type", "period_start"),
        "period_type = 'day'",
        "period_start",
        "period_end",
        "reservations",
        Decimal("-1"),
        "period_start",
        client=TOTAL,
        days=ALL_CLIENTS_CONVERTED_DAYS,
        partitioned=False,
        label_prefix="period_type",
    ),
}


@dataclass(frozen=True)
class Stack:
    defs: Definitions
    instance: DagsterInstance
    engine: sa.Engine


@pytest.fixture(scope="module")
def stack(world, demo_clients, module_warehouse_url, tmp_path_factory) -> Iterator[Stack]:
    catalog = build_catalog(tuple(c for c in demo_clients if c.id in CLIENTS))
    engine = sa.create_engine(module_warehouse_url)
    with (
        SandboxServer(world, now=NOW) as sandbox,
        make_instance(tmp_path_factory.mktemp("dagster_home")) as instance,
    ):
        defs = build_definitions(catalog, make_resources(sandbox.url, module_warehouse_url))
        outcome = materialize_window(defs, catalog, instance, *WINDOW)
        assert outcome.success, outcome.errors
        yield Stack(defs, instance, engine)
    engine.dispose()


def as_date(value: object) -> date:
    """A DATE column as the driver returns it (SQLite: ISO text)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def exact(value: object, column: str) -> Decimal:
    """A stored figure as the exact decimal it stands for (SQLite hands back floats)."""
    places = Decimal("0.01") if column == "total_spend" else Decimal("1")
    return Decimal(str(value)).quantize(places)


def pick_row(engine: sa.Engine, store: Store) -> dict:
    columns = ", ".join(("client_id", *store.key_columns, store.start, store.end, store.column))
    query = (
        f"SELECT {columns} FROM {store.table} WHERE client_id = :client AND {store.where} "
        f"ORDER BY {store.start} LIMIT 1"
    )
    with engine.connect() as connection:
        row = connection.execute(sa.text(query), {"client": store.client}).mappings().one()
    return dict(row)


def set_value(engine: sa.Engine, store: Store, row: dict, value: Decimal) -> None:
    keys = ("client_id", *store.key_columns)
    where = " AND ".join(f"{k} = :{k}" for k in keys)
    with engine.begin() as connection:
        connection.execute(
            sa.text(f"UPDATE {store.table} SET {store.column} = :value WHERE {where}"),
            # Text, which both databases read as the column's number (sqlite3 binds no Decimal).
            {"value": str(value), **{k: str(row[k]) for k in keys}},
        )


def _new_row_is(store: Store, row: dict) -> str:
    """SQL condition: the row being inserted is `row` (its key as literals the test chose)."""
    keys = ("client_id", *store.key_columns)
    return " AND ".join(f"NEW.{k} = '{row[k]}'" for k in keys)


@contextmanager
def bad_write(engine: sa.Engine, store: Store, row: dict) -> Iterator[None]:
    """While open, every write of `row` stores `column` off by `delta`: a write gone wrong,
    planted in the database (a trigger), so the pipeline itself runs unchanged."""
    change = f"{store.column} + {store.delta}"
    if engine.dialect.name == "postgresql":
        create = [
            "CREATE FUNCTION plant_mismatch() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN NEW.{store.column} := NEW.{change}; RETURN NEW; END $$",
            f"CREATE TRIGGER plant_mismatch BEFORE INSERT ON {store.table} FOR EACH ROW "
            f"WHEN ({_new_row_is(store, row)}) EXECUTE FUNCTION plant_mismatch()",
        ]
        drop = [
            f"DROP TRIGGER plant_mismatch ON {store.table}",
            "DROP FUNCTION plant_mismatch()",
        ]
    else:
        create = [
            f"CREATE TRIGGER plant_mismatch AFTER INSERT ON {store.table} FOR EACH ROW "
            f"WHEN {_new_row_is(store, row)} BEGIN UPDATE {store.table} "
            f"SET {store.column} = {change} WHERE rowid = NEW.rowid; END"
        ]
        drop = ["DROP TRIGGER plant_mismatch"]
    with engine.begin() as connection:
        for statement in create:
            connection.exec_driver_sql(statement)
    try:
        yield
    finally:
        with engine.begin() as connection:
            for statement in drop:
                connection.exec_driver_sql(statement)


def sum_of_days(engine: sa.Engine, store: Store, start: date, end: date) -> Decimal:
    query = f"SELECT COALESCE(SUM({store.column}), 0) {store.days}"
    with engine.connect() as connection:
        total = connection.execute(
            sa.text(query), {"client": store.client, "start": str(start), "end": str(end)}
        ).scalar()
    return exact(total, store.column)


def rematerialize(stack: Stack, store: Store, partition: str | None):
    """The store for one partition with its consistency check, as a run in the instance.

    The check runs in the asset's run, as in production: a run of checks alone carries no
    partitions for them to read.
    """
    return materialize(
        assets=[*(stack.defs.assets or []), *(stack.defs.asset_checks or [])],
        selection=AssetSelection.assets(store.asset).without_checks()
        | AssetSelection.checks(store.check),
        instance=stack.instance,
        resources=stack.defs.resources,
        partition_key=partition,
        raise_on_error=False,
    )


def check_spec(defs: Definitions, key: AssetCheckKey):
    checks = next(c for c in defs.asset_checks or [] if key in c.check_keys)
    return checks.get_spec_for_check_key(key)


def failure_posts(stack: Stack, store: Store) -> list[dict]:
    """Webhook messages about this check from two ticks of the alert sensor."""
    sensor = stack.defs.resolve_sensor_def("check_alert_sensor")
    with webhook_receiver() as (hook_url, posts):
        notifier = AlertNotifier(webhook_url=hook_url)
        cursor = None
        for _ in range(2):  # the second tick finds nothing new: no repeat
            context = build_sensor_context(
                instance=stack.instance, cursor=cursor, resources={"alerts": notifier}
            )
            cursor = sensor.evaluate_tick(context).cursor
    return [p for p in posts if p["text"].startswith(f"*Check failed: {store.check_name} ")]


@pytest.mark.parametrize("kind", list(STORES))
def test_a_row_off_its_days_fails_the_check_with_the_row_and_alerts_once(stack, kind):
    store = STORES[kind]
    row = pick_row(stack.engine, store)
    start, end = as_date(row[store.start]), as_date(row[store.end])
    expected_sum = sum_of_days(stack.engine, store, start, end)
    assert exact(row[store.column], store.column) == expected_sum, "consistent to begin with"
    label = str(row[store.label]) if store.label else "cache"
    if store.label_prefix:
        label = f"{row[store.label_prefix]} {label}"
    partition = f"{CLIENT}|{start}" if store.table == "campaign_summaries" else CLIENT
    if not store.partitioned:
        partition = None

    try:
        with bad_write(stack.engine, store, row):
            result = rematerialize(stack, store, partition)
        stored = exact(pick_row(stack.engine, store)[store.column], store.column)
        assert stored == expected_sum + store.delta, "the planted write took effect"

        evaluations = [
            e for e in result.get_asset_check_evaluations() if e.asset_check_key == store.check
        ]
        assert len(evaluations) == 1, [e.message for e in result.get_step_failure_events()]
        evaluation = evaluations[0]
        assert evaluation.passed is False
        offending = evaluation.metadata["offending_json"].value
        assert len(offending) == 1, offending
        found = offending[0]
        assert {k: found[k] for k in ("client", "date", "period", "column")} == {
            "client": store.client,
            "date": label,
            "period": f"{start}..{end}",
            "column": store.column,
        }
        assert Decimal(str(found["stored"])) == stored
        assert Decimal(str(found["sum_of_days"])) == expected_sum
        if store.column == "total_spend":  # money travels as exact text, never a float
            assert isinstance(found["stored"], str) and isinstance(found["sum_of_days"], str)
        assert evaluation.metadata["offending_count"].value == 1

        # Blocking: the failed check fails its run, so nothing reads past a wrong store.
        assert check_spec(stack.defs, store.check).blocking is True
        assert result.success is False
        failed = result.get_step_failure_events()
        assert [e.step_key for e in failed] == [
            f"{store.asset.to_python_identifier()}_consistency"
        ], [e.message for e in failed]

        # The check's alerts name this row once (the portfolio's two cases share a check).
        named = f"client {store.client}, date {label}: "
        posts = [p for p in failure_posts(stack, store) if named in p["text"]]
        assert len(posts) == 1, [p["text"] for p in posts]
        assert f"column={store.column}" in posts[0]["text"]
    finally:
        set_value(stack.engine, store, row, expected_sum)


def test_a_day_a_cent_off_its_raw_rows_fails_the_daily_check_with_the_day(stack):
    """daily_kpi_data's check compares each day with the database's sum of its raw rows."""
    store = Store(
        AssetKey("daily_kpi_data"),
        "daily_kpi_data",
        ("date", "platform"),
        "1 = 1",
        "date",
        "date",
        "total_spend",
        Decimal("0.01"),
        "date",
    )
    row = pick_row(stack.engine, store)
    day = as_date(row["date"])
    query = "SELECT SUM(spend) FROM meta_insights WHERE client_id = :client AND date = :day"
    with stack.engine.connect() as connection:
        raw = connection.execute(sa.text(query), {"client": CLIENT, "day": str(day)}).scalar()
    expected_sum = exact(raw, "total_spend")
    assert exact(row["total_spend"], "total_spend") == expected_sum, "consistent to begin with"
    try:
        with bad_write(stack.engine, store, row):
            result = rematerialize(stack, store, f"{CLIENT}|{day}")
        evaluation = next(
            e for e in result.get_asset_check_evaluations() if e.asset_check_key == store.check
        )
        assert evaluation.passed is False
        offending = evaluation.metadata["offending_json"].value
        assert [(r["client"], r["date"], r["column"]) for r in offending] == [
            (CLIENT, str(day), "total_spend")
        ], offending
        assert Decimal(str(offending[0]["daily"])) == expected_sum + Decimal("0.01")
        assert Decimal(str(offending[0]["sum_of_insights"])) == expected_sum
        assert result.success is False
    finally:
        set_value(stack.engine, store, row, expected_sum)
