"""Writes are all-or-nothing and re-running is harmless: killed processes, dropped
connections and two writers of the same partitions, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterEventType, DagsterInstance

from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
from metrics_pipeline.sandbox.ground_truth import day_truth
from metrics_pipeline.sandbox.server import SANDBOX_TOKEN, SandboxServer
from metrics_pipeline.sandbox.world import World
from metrics_pipeline.steps.retries import MAX_RETRIES_ENV
from metrics_pipeline.warehouse.resource import (
    WRITE_PROBE_ENV,
    WRITE_PROBE_SECONDS_ENV,
    WRITE_PROBE_TABLE_ENV,
    WarehouseResource,
)
from metrics_pipeline_tests.conftest import (
    BUNDLED_CLIENTS,
    NOW,
    make_instance,
    make_resources,
    postgres_schema_url,
)
from metrics_pipeline_tests.helpers import days_between, local_today
from metrics_pipeline_tests.truth import normal_expected, stored_kpis

COMMAND = str(Path(sys.executable).with_name("metrics-pipeline"))
WINDOW = (NOW.date() - timedelta(days=35), NOW.date() - timedelta(days=2))
# Complete days still inside Meta's attribution period: a new revision changes every one.
RECENT = (NOW.date() - timedelta(days=6), NOW.date() - timedelta(days=2))
OLD_REVISION, NEW_REVISION = 0, 2


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
        "METRICS_FX_RATES_URL": sandbox.url + FEED_PATH,
        "METRICS_AS_OF": NOW.isoformat(),
    }


def _materialize(env, *extra: str, window: tuple[date, date] = WINDOW) -> subprocess.Popen:
    return subprocess.Popen(
        [COMMAND, "materialize", "--start", str(window[0]), "--end", str(window[1]), *extra],
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
            if truth.rows:
                # The collection log is written in the same transaction as the rows.
                assert (day in collected) == (rows > 0), (client.id, day)
            if day in collected:
                assert collected[day] == truth.rows
        # Daily KPIs exist only for days whose collection was committed.
        assert set(daily["date"]) <= set(collected), client.id
        for row in daily.to_dict("records"):
            truth = day_truth(world, client.meta_ad_account_id, row["date"], 0, today)
            assert stored_kpis(row) == normal_expected(truth), (client.id, row["date"])


def assert_equals_ground_truth(
    warehouse, world, catalog, window: tuple[date, date] = WINDOW, revision: int = 0
) -> None:
    for client in catalog.clients:
        today = local_today(world, client.meta_ad_account_id, NOW)
        daily = warehouse.read("daily_kpi_data", {"client_id": client.id}, ["date"])
        assert list(daily["date"]) == days_between(*window), client.id
        insights = warehouse.read("meta_insights", {"client_id": client.id})
        assert len(insights) == sum(
            day_truth(world, client.meta_ad_account_id, d, revision, today).rows
            for d in days_between(*window)
        )
        for row in daily.to_dict("records"):
            truth = day_truth(world, client.meta_ad_account_id, row["date"], revision, today)
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


def _probe_env(env: dict[str, str], probe: Path, hold_seconds: int) -> dict[str, str]:
    """The product's write probe: the first meta_insights write is held open at `probe`."""
    return {
        **env,
        WRITE_PROBE_ENV: str(probe),
        WRITE_PROBE_TABLE_ENV: "meta_insights",
        WRITE_PROBE_SECONDS_ENV: str(hold_seconds),
    }


def _wait_for_probe(probe: Path, process: subprocess.Popen, seconds: float = 120) -> list[str]:
    """The probe file's lines once complete (the last names the writer's pid)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lines = probe.read_text().splitlines() if probe.exists() else []
        if lines and lines[-1].startswith("pid "):
            return lines
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"the writer ended before the probe held a write:\n{output}")
        time.sleep(0.02)
    pytest.fail("no write reached the probe")


def _raw_by_partition(warehouse_url: str) -> dict[tuple[str, date], tuple]:
    """(client, day) -> (rows, spend, reservations, reservation value), summed by SQL."""
    engine = sa.create_engine(WarehouseResource(url=warehouse_url).resolved_url)
    try:
        with engine.connect() as connection:
            result = connection.execute(
                sa.text(
                    "SELECT client_id, date, count(*), sum(spend), sum(reservations),"
                    " sum(reservation_value) FROM meta_insights GROUP BY client_id, date"
                )
            ).all()
    finally:
        engine.dispose()
    return {
        (client, date.fromisoformat(str(day))): (
            int(rows),
            Decimal(str(spend)).quantize(Decimal("0.01")),
            int(reservations),
            Decimal(str(value)).quantize(Decimal("0.01")),
        )
        for client, day, rows, spend, reservations, value in result
    }


@pytest.fixture(scope="module")
def world() -> World:
    """The tidy demo world: these tests tell a partition's old, new and absent states apart
    by the purchases attributed late, so every day must have some, and a day spent without
    an impression (as in the suite's awkward world) has none."""
    return World(anchor=NOW.date())


def _raw_truth(truth) -> tuple:
    return (truth.rows, truth.spend, truth.reservations, truth.reservation_value)


def test_sigkill_inside_a_partition_write_leaves_each_partition_old_or_new(
    tmp_path, sandbox, world, catalog, warehouse_url
):
    """The window holds revision 0; a re-read of revision 2 is SIGKILLed while the write
    probe holds a meta_insights write open (old rows deleted, new ones not yet inserted).
    Each (client, day) must then be wholly old or wholly new in every table, never empty
    or mixed; a re-run ends equal to the new revision."""
    warehouse = WarehouseResource(url=warehouse_url)
    sandbox.set_revision(OLD_REVISION)
    defs = build_definitions(catalog, make_resources(sandbox.url, warehouse_url))
    with make_instance(tmp_path / "first_home") as instance:
        first = materialize_window(defs, catalog, instance, *RECENT)
        assert first.success, first.errors

    truths = {}
    for client in catalog.clients:
        account_id = client.meta_ad_account_id
        today = local_today(world, account_id, NOW)
        for day in days_between(*RECENT):
            old, new = (day_truth(world, account_id, day, r, today) for r in (0, NEW_REVISION))
            # "old", "new" and "absent" must be told apart for every partition.
            assert old.rows > 0 and old.reservations != new.reservations, (client.id, day)
            truths[client.id, day] = (old, new)

    sandbox.set_revision(NEW_REVISION)
    probe = tmp_path / "write_probe"
    env = _env(tmp_path, sandbox, warehouse_url)
    process = _materialize(_probe_env(env, probe, hold_seconds=60), window=RECENT)
    try:
        held = _wait_for_probe(probe, process)
        assert "meta_insights" in held, held
        # The transaction is open: its advisory locks are held (PostgreSQL), or SQLite's
        # one write lock is taken.
        assert _writing(warehouse_url), "the held write has no open transaction"
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    raw = _raw_by_partition(warehouse_url)
    collections = {
        (r["client_id"], r["date"]): r["row_count"]
        for r in warehouse.read("meta_insight_collections").to_dict("records")
    }
    daily = {
        (r["client_id"], r["date"]): stored_kpis(r)
        for r in warehouse.read("daily_kpi_data").to_dict("records")
    }
    still_old = 0
    for key, (old, new) in truths.items():
        assert raw.get(key) in (_raw_truth(old), _raw_truth(new)), (key, raw.get(key))
        still_old += raw[key] == _raw_truth(old)
        assert collections.get(key) == old.rows, key  # the same rows in both revisions
        assert daily.get(key) in (normal_expected(old), normal_expected(new)), key
    assert still_old >= 1, "the held write's partitions should have kept the old revision"

    rerun = _materialize(env, window=RECENT)
    output, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, output
    assert_equals_ground_truth(warehouse, world, catalog, RECENT, NEW_REVISION)
    assert _raw_by_partition(warehouse_url) == {k: _raw_truth(n) for k, (_, n) in truths.items()}


def _waiting_for_advisory_lock(warehouse_url: str) -> bool:
    """True while a backend of this test waits for (has not been granted) an advisory lock."""
    engine = sa.create_engine(warehouse_url.split("?")[0])
    try:
        with engine.connect() as connection:
            return bool(
                connection.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a"
                        " ON a.pid = l.pid WHERE l.locktype = 'advisory' AND NOT l.granted"
                        " AND a.application_name = :name"
                    ),
                    {"name": warehouse_url.rsplit("application_name=", 1)[1]},
                ).scalar()
            )
    finally:
        engine.dispose()


def test_two_writers_of_the_same_partitions_wait_on_each_other_and_leave_one_copy(
    tmp_path, sandbox, world, catalog, warehouse_url
):
    """The first writer's meta_insights write is held open by the probe until the second
    writer has reached the same partitions and waits for them (on PostgreSQL: a not-granted
    advisory lock). Step retries are off, so a clash cannot be absorbed by a retry: both
    commands succeed, no step was retried and the data equals the ground truth once."""
    env = {**_env(tmp_path, sandbox, warehouse_url), MAX_RETRIES_ENV: "0"}
    probe = tmp_path / "write_probe"
    first = _materialize(_probe_env(env, probe, hold_seconds=120), window=RECENT)
    second = None
    try:
        _wait_for_probe(probe, first)
        assert _writing(warehouse_url)
        second = _materialize(env, window=RECENT)
        if warehouse_url.startswith("postgresql"):
            deadline = time.monotonic() + 90
            waited = False
            while time.monotonic() < deadline and second.poll() is None and not waited:
                waited = _waiting_for_advisory_lock(warehouse_url)
                time.sleep(0.05)
            assert waited, "the second writer never waited for the first one's partitions"
        else:
            # SQLite has one write lock, held by the first writer: whatever the second
            # writes queues behind it (well within SQLite's 60 s wait for the lock).
            time.sleep(8)
            assert second.poll() is None
        assert first.poll() is None  # still held
        probe.unlink()  # release the first writer
        outputs = [p.communicate(timeout=600)[0] for p in (first, second)]
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=60)
    assert (first.returncode, second.returncode) == (0, 0), outputs
    with DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        runs = instance.get_runs()
        assert len(runs) >= 2 and all(r.status.value == "SUCCESS" for r in runs)
        for run in runs:
            for event_type in (DagsterEventType.STEP_UP_FOR_RETRY, DagsterEventType.STEP_RESTARTED):
                retried = instance.get_records_for_run(run.run_id, of_type=event_type).records
                assert retried == [], (run.run_id, event_type)
    assert_equals_ground_truth(WarehouseResource(url=warehouse_url), world, catalog, RECENT)


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
