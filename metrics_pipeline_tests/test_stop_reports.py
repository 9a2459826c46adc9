"""Ctrl-C and SIGTERM as a user sends them to `metrics-pipeline materialize`: the command
ends within seconds, and its last line says what the stop did exactly as the Dagster instance
records it (the run canceled, the run that finished and was kept, or no run in flight).

The signal is landed at a chosen moment with the product's write probe (a step's first
write of a table held open, so the signal arrives inside that step) or, between runs, with
the terminal paused by Ctrl-S (the command blocks printing the next stage's name).
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import termios
import threading
import time
import urllib.request
from collections import defaultdict
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance

from metrics_pipeline import stopping
from metrics_pipeline.cli.console import cli_loggers
from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.domain.periods import month_start, week_start
from metrics_pipeline.runner import (
    DAILY_ONLY,
    FX_RATES,
    MONTHLY,
    OBJECTS,
    PORTFOLIO,
    RAW_AND_DAILY,
    SERVING,
    WEEKLY,
    run_stage,
)
from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline.sandbox.world import World
from metrics_pipeline.warehouse.resource import WRITE_PROBE_TABLE_ENV, WarehouseResource
from metrics_pipeline_tests.conftest import NOW, make_resources
from metrics_pipeline_tests.helpers import TABLES, days_between
from metrics_pipeline_tests.test_crash_and_concurrency import (
    COMMAND,
    WINDOW,
    _env,
    _materialize,
    _probe_env,
    _wait_for_probe,
    assert_equals_ground_truth,
    assert_no_half_partition,
)

DAYS = len(days_between(*WINDOW))  # 34
CLIENTS = 4  # the bundled demo clients
# Complete ISO weeks from the week of the window's first day (the weekly partitions).
WEEKS = sorted(
    {
        week_start(day)
        for day in days_between(*WINDOW)
        if week_start(day) + timedelta(days=6) < NOW.date()
    }
)
# The promise: the command exits within seconds of a signal (0.6-2.1 s measured alone). The
# bound leaves room for a 2-core machine running the suite's four workers besides (4.4 to
# 10.5 s seen there, the longest beside the deployment test starting its four processes).
# What tells a stop at the next stop point from one that waited for the step's end is what
# was stored and recorded, asserted below, not the time.
EXIT_SECONDS = 15.0
# How long the raw and daily run of the window may take before the signal is sent: the whole
# test took 17 s in a quiet suite run, and the run alone outlasted a 120 s bound on a loaded
# 2-core machine; the test's own time limit bounds it anyway.
RAW_AND_DAILY_SECONDS = 480
RESUME = f"resume with: metrics-pipeline materialize --start {WINDOW[0]} --end {WINDOW[1]}"
KEPT = "Partitions stored are whole and kept, the others untouched"


class Output:
    """A stream of the command read on a thread, so the test can wait for a line."""

    def __init__(self, read) -> None:
        self.chunks: list[str] = []
        self.thread = threading.Thread(target=self._pump, args=(read,), daemon=True)
        self.thread.start()

    def _pump(self, read) -> None:
        while chunk := read():
            self.chunks.append(chunk)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def wait_for(self, needle: str, process: subprocess.Popen, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while needle not in self.text:
            if process.poll() is not None:
                self.thread.join(timeout=5)  # what it printed last
                if needle in self.text:
                    return
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{needle!r} never came:\n{self.text}")
            time.sleep(0.01)


def _stopped_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.startswith("Stopped (")]
    assert len(lines) == 1, text
    return lines[0]


def _runs(home: Path) -> list[tuple[str, str, str]]:
    """(job, status, run id) of every run the command made, oldest first."""
    with DagsterInstance.from_config(str(home)) as instance:
        return [
            (r.dagster_run.job_name, r.dagster_run.status.value, r.dagster_run.run_id)
            for r in reversed(instance.get_run_records())
        ]


def _recorded(home: Path, run_id: str) -> dict[str, set[str]]:
    """Asset -> the partitions the run recorded as materialized ('' when unpartitioned)."""
    recorded: dict[str, set[str]] = defaultdict(set)
    with DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_records_for_run(
            run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=100_000
        ).records
        for record in records:
            event = record.event_log_entry.dagster_event
            recorded[event.asset_key.to_user_string()].add(str(event.partition or ""))
        for run in instance.get_runs():
            retried = instance.get_records_for_run(
                run.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY
            ).records
            assert retried == [], run.run_id  # a stop is never retried
    return dict(recorded)


def _stored(warehouse: WarehouseResource, table: str) -> set[str]:
    """The partitions of `table` in the warehouse, keyed as Dagster keys them."""
    frame = warehouse.read(table)
    if table == "campaign_summaries":
        frame = frame[frame["summary_type"] == "weekly"]
        return {f"{r.client_id}|{r.summary_date}" for r in frame.itertuples()}
    if table in ("client_kpi_rollups", "current_week_cache"):
        return set(frame["client_id"])
    if table == "fx_rates":
        return {str(day) for day in frame["date"]}
    if table == "portfolio_kpis":
        return {""} if len(frame) else set()
    return {f"{r.client_id}|{r.date}" for r in frame.itertuples()}  # (client, day) tables


@pytest.fixture(scope="module")
def world() -> World:
    """The tidy demo world: a stopped step's partitions are told apart by the rows it stored,
    so every client must have rows on every day, which a day without delivery (as in the
    suite's awkward world) has not."""
    return World(anchor=NOW.date())


JOBS = [
    "ad_objects",
    "collect_and_derive",
    "exchange_rates",
    "weekly_summaries",
    "monthly_summaries",
    "serving",
    "portfolio",
]


def _one_client(keys: set[str]) -> str:
    clients = {key.split("|")[0] for key in keys}
    assert len(clients) == 1, keys
    return clients.pop()


# (table whose first write the probe holds, signal, the stopped run's job, its status as
# recorded, asset -> partitions it recorded, how the stored partitions of the table look)
# Meta's async reports cover 31 days each: the window is read in two chunks per client.
FIRST_CHUNK = days_between(WINDOW[0], WINDOW[0] + timedelta(days=30))


def _whole_first_chunks(keys: set[str]) -> set[str]:
    """The first chunk of every client that stored any (the held write's client at least)."""
    clients = {key.split("|")[0] for key in keys}
    assert clients, "the held write stored nothing"
    return {f"{client}|{day}" for client in clients for day in FIRST_CHUNK}


CASES = {
    # The held write is one client's first chunk; the clients read beside it store the
    # chunk they were writing, or none, and stop before their next.
    "meta_insights-SIGINT": (
        "meta_insights",
        signal.SIGINT,
        "collect_and_derive",
        "CANCELED",
        lambda keys: {"meta_insights": len(keys)},
        _whole_first_chunks,
    ),
    "daily_kpi_data-SIGINT": (
        "daily_kpi_data",
        signal.SIGINT,
        "collect_and_derive",
        "CANCELED",
        {"meta_insights": CLIENTS * DAYS, "daily_kpi_data": DAYS},
        lambda keys: {f"{_one_client(keys)}|{day}" for day in days_between(*WINDOW)},
    ),
    "daily_kpi_data-SIGTERM": (
        "daily_kpi_data",
        signal.SIGTERM,
        "collect_and_derive",
        "CANCELED",
        {"meta_insights": CLIENTS * DAYS, "daily_kpi_data": DAYS},
        lambda keys: {f"{_one_client(keys)}|{day}" for day in days_between(*WINDOW)},
    ),
    "fx_rates-SIGTERM": (
        "fx_rates",
        signal.SIGTERM,
        "exchange_rates",
        "SUCCESS",
        {"fx_rates": DAYS},
        lambda keys: {str(day) for day in days_between(*WINDOW)},
    ),
    "campaign_summaries-SIGINT": (
        "campaign_summaries",
        signal.SIGINT,
        "weekly_summaries",
        "CANCELED",
        {"campaign_summaries/weekly": len(WEEKS)},
        lambda keys: {f"{_one_client(keys)}|{week}" for week in WEEKS},
    ),
    "client_kpi_rollups-SIGTERM": (
        "client_kpi_rollups",
        signal.SIGTERM,
        "serving",
        "CANCELED",
        {"client_kpi_rollups": 1},
        lambda keys: {_one_client(keys)},
    ),
    "current_week_cache-SIGINT": (
        "current_week_cache",
        signal.SIGINT,
        "serving",
        "CANCELED",
        {"client_kpi_rollups": CLIENTS, "current_week_cache": 1},
        lambda keys: {_one_client(keys)},
    ),
    "portfolio_kpis-SIGINT": (
        "portfolio_kpis",
        signal.SIGINT,
        "portfolio",
        "SUCCESS",
        {"portfolio_kpis": 0},
        lambda keys: {""},
    ),
}


def _stored_text(stored: dict[str, int]) -> str:
    return ", ".join(
        f"{asset} ({n} partition{'s' if n != 1 else ''})" if n else asset
        for asset, n in stored.items()
    )


@pytest.mark.parametrize("case", list(CASES))
def test_a_stop_inside_a_step_ends_it_at_its_next_stop_point_and_says_what_the_instance_records(
    tmp_path, world, catalog, case
):
    """The probe holds the step's first write of `table`; the signal arrives, the write is
    let go and commits whole. A step with more clients to go ends at its next stop point,
    its run CANCELED with exactly the written client's partitions recorded and stored; a
    step whose last write that was ends SUCCESS and is kept. No other run starts, the
    command exits 128 + the signal within seconds, and its last line names the run, its status
    and what it stored, exactly as the instance records them."""
    table, signum, job, status, stored, expected_keys = CASES[case]
    warehouse_url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    probe = tmp_path / "write_probe"
    with SandboxServer(world, now=NOW) as sandbox:
        env = _probe_env(_env(tmp_path, sandbox, warehouse_url), probe, hold_seconds=60)
        env[WRITE_PROBE_TABLE_ENV] = table
        process = _materialize(env)
        try:
            output = Output(lambda: process.stdout.readline())
            held = _wait_for_probe(probe, process)
            assert table in held, held
            os.killpg(process.pid, signum)
            asked = time.monotonic()
            # Once the stop is asked for, the held write goes on and commits.
            output.wait_for("Stopping (", process)
            probe.unlink()
            code = process.wait(timeout=60)
            took = time.monotonic() - asked
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=60)
        output.thread.join(timeout=5)
    text = output.text
    print(f"{case}: exit {code} {took:.2f} s after the signal")
    assert code == 128 + signum, text
    assert took < EXIT_SECONDS, (took, text)
    assert "Traceback" not in text, text

    runs = _runs(tmp_path / "home")
    stopped_at = JOBS.index(job)
    assert [(j, s) for j, s, _ in runs] == [
        *((j, "SUCCESS") for j in JOBS[:stopped_at]),
        (job, status),
    ], runs
    run_id = runs[-1][2]
    warehouse = WarehouseResource(url=warehouse_url)
    in_warehouse = _stored(warehouse, table)
    if callable(stored):  # how much was stored depends on the clients read side by side
        stored = stored(in_warehouse)
    recorded = _recorded(tmp_path / "home", run_id)
    assert {asset: len(keys) for asset, keys in recorded.items()} == {
        asset: max(n, 1) for asset, n in stored.items()
    }
    # What the instance records for the probed table is exactly what the warehouse holds.
    asset = next(a for a in stored if a.split("/")[0] == table)
    assert in_warehouse == recorded[asset] == expected_keys(in_warehouse)
    assert_no_half_partition(warehouse, world, catalog)

    before = ", ".join(JOBS[:stopped_at])
    if status == "CANCELED":
        said = (
            f"run {run_id} ({job}) is recorded CANCELED; before the stop it stored "
            f"{_stored_text(stored)}"
        )
    else:
        said = (
            f"the step in flight finished before it could stop: run {run_id} ({job}) is "
            f"recorded SUCCESS and kept; it stored {_stored_text(stored)}"
        )
    assert _stopped_line(text) == (
        f"Stopped ({signum.name}): {said}; no further run started; finished before the "
        f"stop: {before}. {KEPT}; {RESUME}"
    )


class SlowFeed:
    """The sandbox's rates feed behind a server that holds each answer until released, as
    a slow ECB would: the test knows when fx_rates is reading it."""

    def __init__(self, feed_url: str) -> None:
        self.asked, self.release = threading.Event(), threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.asked.set()
                outer.release.wait(60)
                with urllib.request.urlopen(feed_url, timeout=30) as answer:
                    body = answer.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/rates.xml"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_stop_while_the_rates_feed_is_read_writes_no_rate_and_cancels_the_run(
    tmp_path, world, catalog
):
    """SIGINT while fx_rates waits for a slow rates feed: once the feed answers, the step
    ends before it writes, its run is CANCELED having stored nothing, no further run starts,
    and the command says so within seconds."""
    warehouse_url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    with SandboxServer(world, now=NOW) as sandbox:
        feed = SlowFeed(sandbox.url + FEED_PATH)
        env = {**_env(tmp_path, sandbox, warehouse_url), "METRICS_FX_RATES_URL": feed.url}
        process = _materialize(env)
        try:
            output = Output(lambda: process.stdout.readline())
            assert feed.asked.wait(120), output.text
            os.killpg(process.pid, signal.SIGINT)
            asked = time.monotonic()
            output.wait_for("Stopping (", process)
            feed.release.set()
            code = process.wait(timeout=60)
            took = time.monotonic() - asked
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=60)
            feed.close()
        output.thread.join(timeout=5)
    text = output.text
    print(f"slow rates feed, SIGINT: exit {code} {took:.2f} s after the signal")
    assert code == 130, text
    assert took < EXIT_SECONDS, (took, text)
    assert "Traceback" not in text, text
    runs = _runs(tmp_path / "home")
    assert [(j, s) for j, s, _ in runs] == [
        ("ad_objects", "SUCCESS"),
        ("collect_and_derive", "SUCCESS"),
        ("exchange_rates", "CANCELED"),
    ]
    assert _recorded(tmp_path / "home", runs[-1][2]) == {}
    warehouse = WarehouseResource(url=warehouse_url)
    assert _stored(warehouse, "fx_rates") == set()
    assert_equals_ground_truth(warehouse, world, catalog)
    assert _stopped_line(text) == (
        f"Stopped (SIGINT): run {runs[-1][2]} (exchange_rates) is recorded CANCELED; before the "
        "stop it stored nothing; no further run started; finished before the stop: "
        f"ad_objects, collect_and_derive. {KEPT}; {RESUME}"
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_between_runs_starts_no_run_and_says_none_was_in_flight(
    tmp_path, world, catalog, signum
):
    """The terminal is paused with Ctrl-S while the raw and daily layers run; once their run
    is recorded SUCCESS the command blocks printing the next stage's name, between runs.
    The signal arrives there, the terminal is resumed with Ctrl-Q: no further run starts,
    nothing is recorded CANCELED, the last line says no run was in flight, and the command
    exits 128 + the signal within seconds."""
    warehouse_url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    home = tmp_path / "home"
    with SandboxServer(world, now=NOW) as sandbox:
        env = _env(tmp_path, sandbox, warehouse_url)
        terminal, command_side = pty.openpty()
        modes = termios.tcgetattr(command_side)
        modes[0] |= termios.IXON  # Ctrl-S / Ctrl-Q pause and resume the output
        termios.tcsetattr(command_side, termios.TCSANOW, modes)
        process = subprocess.Popen(
            [COMMAND, "materialize", "--start", str(WINDOW[0]), "--end", str(WINDOW[1])],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=command_side,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        os.close(command_side)

        def read_terminal() -> str:
            try:
                return os.read(terminal, 4096).decode()
            except OSError:  # the command side closed
                return ""

        screen = Output(read_terminal)
        errors = Output(lambda: process.stderr.readline())
        try:
            screen.wait_for("meta_insights + daily_kpi_data", process)
            os.write(terminal, b"\x13")  # Ctrl-S
            deadline = time.monotonic() + RAW_AND_DAILY_SECONDS
            while [(j, s) for j, s, _ in _runs(home)] != [
                ("ad_objects", "SUCCESS"),
                ("collect_and_derive", "SUCCESS"),
            ]:
                assert process.poll() is None, f"the command ended early: {errors.text}"
                assert time.monotonic() < deadline, (
                    f"the raw and daily run not recorded SUCCESS within {RAW_AND_DAILY_SECONDS} s: "
                    f"{_runs(home)} {errors.text}"
                )
                time.sleep(0.1)
            time.sleep(1)
            assert len(_runs(home)) == 2, "a run started with the terminal paused"
            os.killpg(process.pid, signum)
            asked = time.monotonic()
            errors.wait_for("Stopping (", process)  # the stop is asked for ...
            os.write(terminal, b"\x11")  # ... then Ctrl-Q
            code = process.wait(timeout=60)
            took = time.monotonic() - asked
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=60)
            screen.thread.join(timeout=5)
            os.close(terminal)
        errors.thread.join(timeout=5)
    print(f"between runs, {signum.name}: exit {code} {took:.2f} s after the signal")
    assert code == 128 + signum, screen.text + errors.text
    assert took < EXIT_SECONDS, (took, errors.text)
    assert "Traceback" not in screen.text + errors.text
    # The stage it was printing when paused, and no run of it.
    assert "fx_rates: " in screen.text
    assert [(j, s) for j, s, _ in _runs(home)] == [
        ("ad_objects", "SUCCESS"),
        ("collect_and_derive", "SUCCESS"),
    ]
    assert _stopped_line(errors.text) == (
        f"Stopped ({signum.name}): no run was in flight when the stop came; none is recorded "
        "CANCELED; no further run started; finished before the stop: ad_objects, "
        f"collect_and_derive. {KEPT}; {RESUME}"
    )
    warehouse = WarehouseResource(url=warehouse_url)
    assert_equals_ground_truth(warehouse, world, catalog)
    assert _stored(warehouse, "fx_rates") == set()


@pytest.fixture
def stop_asked():
    """The stop flag the command line sets on a signal, set for this test only."""
    stopping.request_stop()
    yield
    stopping.reset()


def test_every_step_asked_to_stop_before_it_starts_ends_at_its_first_stop_point(
    stop_asked, tmp_path, sandbox, catalog, instance
):
    """With a stop already asked for, a run of each layer (as the runner starts them, here
    without its own check before each run) fails every asset step at its first stop point,
    not retried: nothing is read from Meta, written or recorded as materialized."""
    warehouse_url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    defs = build_definitions(catalog, make_resources(sandbox.url, warehouse_url))
    first, last = catalog.client_ids[0], catalog.client_ids[-1]
    start, end = WINDOW
    days = (f"{first}|{start}", f"{last}|{end}")
    month = month_start(start)
    alphabetical_first = sorted(catalog.client_ids)[0]  # daily and summary steps go by id
    stages = [
        (OBJECTS, (first, last), {"meta_ad_objects": "collecting meta_ad_objects"}),
        (RAW_AND_DAILY, days, {"meta_insights": "collecting meta_insights"}),
        (
            DAILY_ONLY,
            days,
            {"daily_kpi_data": f"deriving daily_kpi_data for client {alphabetical_first!r}"},
        ),
        (FX_RATES, (str(start), str(end)), {"fx_rates": "about to read the ECB rates"}),
        (
            WEEKLY,
            (f"{first}|{WEEKS[0]}", f"{last}|{WEEKS[-1]}"),
            {
                "campaign_summaries__weekly": "summing weekly summaries of client "
                f"{alphabetical_first!r}"
            },
        ),
        (
            MONTHLY,
            (f"{first}|{month}", f"{last}|{month}"),
            {
                "campaign_summaries__monthly": "summing monthly summaries of client "
                f"{alphabetical_first!r}"
            },
        ),
        (
            SERVING,
            (first, last),
            {
                "client_kpi_rollups": f"reading the rollups of client {first!r}",
                "current_week_cache": f"reading the week-to-date cache of client {first!r}",
            },
        ),
        (
            PORTFOLIO,
            (None, None),
            {"portfolio_kpis": f"reading the daily KPIs of client {first!r}"},
        ),
    ]
    quiet = cli_loggers(verbose=False)  # the command line's: no stack traces
    for selection, (first_key, last_key), expected in stages:
        outcome = run_stage(
            defs, instance, "stopped", selection, first_key, last_key, {}, "ERROR", loggers=quiet
        )
        assert not outcome.success, selection
        assert dict(zip(outcome.failed_steps, outcome.errors, strict=True)) == {
            step: f"stopped on request while {doing}; 0 partition(s) written before the stop"
            for step, doing in expected.items()
        }
        for event_type in (
            DagsterEventType.ASSET_MATERIALIZATION,
            DagsterEventType.STEP_UP_FOR_RETRY,
        ):
            assert instance.get_records_for_run(outcome.run_id, of_type=event_type).records == []
    warehouse = WarehouseResource(url=warehouse_url)
    for table in (*TABLES, "fx_rates", "portfolio_kpis"):
        assert warehouse.count(table, {}) == 0, table
    assert sandbox.state.requests == []  # not one call to Meta
