"""Writes are all-or-nothing and re-running is harmless: killed processes, dropped
connections and two writers of the same partitions, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterEventType, DagsterInstance

from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.ground_truth import day_truth
from metrics_pipeline.sandbox.server import SANDBOX_TOKEN, SandboxServer
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import (
    BUNDLED_CLIENTS,
    NOW,
    make_resources,
    postgres_schema_url,
)
from metrics_pipeline_tests.helpers import days_between, local_today
from metrics_pipeline_tests.truth import normal_expected, stored_kpis

COMMAND = str(Path(sys.executable).with_name("metrics-pipeline"))
WINDOW = (NOW.date() - timedelta(days=35), NOW.date() - timedelta(days=2))


def _env(tmp_path, sandbox, warehouse_url) -> dict[str, str]:
    (tmp_path / "home").mkdir(exist_ok=True)
    # Dagster's embedded storage must exist before two processes open it at once.
    DagsterInstance.from_config(str(tmp_path / "home")).dispose()
    return {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "METRICS_CLIENTS_FILE": str(BUNDLED_CLIENTS),
        "METRICS_WAREHOUSE_URL": warehouse_url,
        "META_API_BASE_URL": sandbox.url,
        "META_ACCESS_TOKEN": SANDBOX_TOKEN,
        "METRICS_AS_OF": NOW.isoformat(),
    }


def _materialize(env, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [COMMAND, "materialize", "--start", str(WINDOW[0]), "--end", str(WINDOW[1]), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def assert_no_half_partition(warehouse: WarehouseResource, world, catalog) -> None:
    """Every (client, day) is absent, or complete and consistent, in every table."""
    for client in catalog.clients:
        today = local_today(world, client.meta_ad_account_id, NOW)
        insights = warehouse.read("meta_insights", {"client_id": client.id})
        collections = warehouse.read("meta_insight_collections", {"client_id": client.id})
        daily = warehouse.read("daily_kpi_data", {"client_id": client.id})
        counts = insights.groupby("date").size().to_dict() if len(insights) else {}
        collected = dict(zip(collections["date"], collections["row_count"], strict=True))
        for day in days_between(*WINDOW):
            truth = day_truth(world, client.meta_ad_account_id, day, 0, today)
            rows = counts.get(day, 0)
            assert rows in (0, truth.rows), (client.id, day, rows)
            # The collection log is written in the same transaction as the rows.
            assert (day in collected) == (rows > 0 or (truth.rows == 0 and day in collected))
            if day in collected:
                assert collected[day] == truth.rows
        for row in daily.to_dict("records"):
            truth = day_truth(world, client.meta_ad_account_id, row["date"], 0, today)
            assert stored_kpis(row) == normal_expected(truth), (client.id, row["date"])


def assert_equals_ground_truth(warehouse, world, catalog) -> None:
    for client in catalog.clients:
        today = local_today(world, client.meta_ad_account_id, NOW)
        daily = warehouse.read("daily_kpi_data", {"client_id": client.id}, ["date"])
        assert list(daily["date"]) == days_between(*WINDOW), client.id
        insights = warehouse.read("meta_insights", {"client_id": client.id})
        assert len(insights) == sum(
            day_truth(world, client.meta_ad_account_id, d, 0, today).rows
            for d in days_between(*WINDOW)
        )
        for row in daily.to_dict("records"):
            truth = day_truth(world, client.meta_ad_account_id, row["date"], 0, today)
            assert stored_kpis(row) == normal_expected(truth)


def _writing(warehouse_url: str) -> bool:
    """True while some connection holds an open write transaction on the warehouse."""
    if warehouse_url.startswith("sqlite"):
        path = sa.engine.make_url(warehouse_url).database
        import sqlite3

        probe = sqlite3.connect(path, timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            probe.close()
    engine = sa.create_engine(warehouse_url.split("?")[0])
    try:
        with engine.connect() as connection:
            mine = warehouse_url.rsplit("application_name=", 1)[1]
            held = connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = :name"
                ),
                {"name": mine},
            ).scalar()
            return bool(held)
    finally:
        engine.dispose()


def test_sigkill_mid_write_leaves_whole_partitions_and_a_rerun_completes(
    tmp_path, sandbox, world, catalog, warehouse_url
):
    env = _env(tmp_path, sandbox, warehouse_url)
    warehouse = WarehouseResource(url=warehouse_url)
    kills = 0
    for _ in range(3):
        process = _materialize(env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if _writing(warehouse_url):
                os.killpg(process.pid, signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.005)
        process.wait(timeout=60)
        assert_no_half_partition(warehouse, world, catalog)
    assert kills >= 1, "the writer was never caught mid-transaction"
    rerun = _materialize(env)
    output, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, output
    assert_equals_ground_truth(warehouse, world, catalog)


def test_two_writers_of_the_same_partitions_leave_one_copy(
    tmp_path, sandbox, world, catalog, warehouse_url
):
    env = _env(tmp_path, sandbox, warehouse_url)
    first, second = _materialize(env), _materialize(env)
    for process in (first, second):
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output
    assert_equals_ground_truth(WarehouseResource(url=warehouse_url), world, catalog)


@pytest.fixture
def postgres_url():
    """Terminating a backend is a PostgreSQL operation (SIGKILL covers SQLite)."""
    yield from postgres_schema_url()


def test_a_dropped_database_connection_rolls_back_and_a_rerun_completes(
    catalog, instance, world, sandbox, postgres_url, monkeypatch
):
    # A cut connection fails the step, which Dagster retries; keep the retry delay short.
    monkeypatch.setenv("METRICS_STEP_RETRY_DELAY_SECONDS", "1")
    warehouse_url = postgres_url
    defs = build_definitions(catalog, make_resources(sandbox.url, warehouse_url))
    warehouse = WarehouseResource(url=warehouse_url)
    admin = sa.create_engine(warehouse_url.split("?")[0], isolation_level="AUTOCOMMIT")
    application = warehouse_url.rsplit("application_name=", 1)[1]
    terminated = []

    def terminate_writer() -> None:
        deadline = time.monotonic() + 120
        # Cut the first write caught in the middle of its DELETE, INSERT or COPY.
        while time.monotonic() < deadline and not done.is_set() and not terminated:
            with admin.connect() as connection:
                pids = connection.execute(
                    sa.text(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = :name"
                        " AND (query ILIKE 'INSERT INTO%' OR query ILIKE 'DELETE FROM%'"
                        " OR query ILIKE 'COPY %')"
                        " AND state = 'active'"
                    ),
                    {"name": application},
                ).scalars()
                for pid in pids:
                    connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                    terminated.append(pid)
            time.sleep(0.005)

    done = threading.Event()
    killer = threading.Thread(target=terminate_writer)
    killer.start()
    try:
        # Fails, or recovers through step retries: either way nothing may be half written.
        materialize_window(defs, catalog, instance, *WINDOW)
    finally:
        done.set()
        killer.join()
    admin.dispose()
    assert terminated, "no write transaction was caught"
    assert_no_half_partition(warehouse, world, catalog)
    again = materialize_window(defs, catalog, instance, *WINDOW)
    assert again.success, again.errors
    assert_equals_ground_truth(warehouse, world, catalog)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_request_mid_backfill_ends_fast_cancels_the_run_and_keeps_whole_partitions(
    tmp_path, world, catalog, signum
):
    """Ctrl-C (or SIGTERM) during a 34-day backfill on a slow Meta: the command ends within
    30 s with 128 + the signal, the run in flight is CANCELED (none left STARTED and none
    retried), and every (client, day) is absent or complete."""
    warehouse_url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    with SandboxServer(world, now=NOW) as slow:
        slow.inject("slow", count=-1, route="report", delay_seconds=0.5)
        env = _env(tmp_path, slow, warehouse_url)
        process = _materialize(env)
        output: list[str] = []
        reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
        reader.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("meta_insights" in o for o in output):
            assert process.poll() is None, "".join(output)
            time.sleep(0.05)
        time.sleep(2)  # inside the collection: report jobs polled, chunks being written
        os.killpg(process.pid, signum)
        asked = time.monotonic()
        code = process.wait(timeout=60)
        took = time.monotonic() - asked
        reader.join(timeout=5)
    text = "".join(output)
    assert code == 128 + signum, text
    # Well within the 20 s after which the command would give up waiting and exit anyway.
    assert took < 15, (took, text)
    assert f"Stopped ({signal.Signals(signum).name})" in text
    assert "resume with: metrics-pipeline materialize" in text
    assert "Traceback" not in text
    with DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        runs = {run.run_id: run for run in instance.get_runs()}
        statuses = sorted(run.status.value for run in runs.values())
        assert "CANCELED" in statuses and "STARTED" not in statuses, statuses
        # The interrupted step was not retried.
        for run_id in runs:
            restarts = instance.get_records_for_run(
                run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY
            ).records
            assert restarts == [], run_id
    assert_no_half_partition(WarehouseResource(url=warehouse_url), world, catalog)
