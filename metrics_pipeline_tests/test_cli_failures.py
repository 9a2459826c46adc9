"""What goes wrong before or around a run, tried as a person at a terminal would: one line
naming what to fix, no stack trace, a non-zero exit within seconds; and inside a run, a
step that no retry can help is not retried."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import DagsterEventType

from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
from metrics_pipeline.sandbox.server import SANDBOX_TOKEN
from metrics_pipeline.warehouse.errors import WarehouseUnavailableError
from metrics_pipeline_tests.conftest import BUNDLED_CLIENTS, NOW, make_resources, require_postgres

COMMAND = str(Path(sys.executable).with_name("metrics-pipeline"))
DAY = str(NOW.date() - timedelta(days=3))


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(tmp_path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    (tmp_path / "home").mkdir(exist_ok=True)
    full_env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "METRICS_CLIENTS_FILE": str(BUNDLED_CLIENTS),
        "METRICS_WAREHOUSE_URL": f"sqlite:///{tmp_path / 'warehouse.sqlite'}",
        "META_ACCESS_TOKEN": SANDBOX_TOKEN,
        "METRICS_AS_OF": NOW.isoformat(),
        **env,
    }
    started = time.monotonic()
    result = subprocess.run(
        [COMMAND, *args, "materialize", "--start", DAY, "--end", DAY],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, time.monotonic() - started


def test_a_gzip_bomb_for_a_rates_feed_ends_the_run_within_seconds_naming_the_feed(
    tmp_path, sandbox
):
    """With the shipped limits: the bomb would inflate to 1 GiB; reading stops at 16 MiB."""
    bomb = sandbox.inject("feed_gzip_bomb", size_bytes=1024**3, count=-1)
    feed = sandbox.url + FEED_PATH
    result, took = _run(
        tmp_path, META_API_BASE_URL=sandbox.url, METRICS_FX_RATES_URL=feed + "?key=not-a-real-key"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert took < 30, took  # collecting the clients' day, then the feed refused at once
    assert bomb.fired == 1
    failed = [line for line in _error_lines(result) if line.startswith("FAILED ")]
    assert failed == [
        "FAILED fx_rates: metrics_pipeline.fx.resource.FxRatesUnavailableError: "
        f"exchange-rate feed {feed}: sent a body over the 16777216-byte cap (16 MiB)"
    ], result.stderr
    assert "not-a-real-key" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    # The command (one process: its runs execute in it) never held the bomb: the largest
    # peak of any command this test process has waited for stays far under 1 GiB.
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < 1024 * 1024  # KiB


def _error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_a_missing_database_is_named_within_seconds_without_its_password(tmp_path):
    require_postgres().dispose()
    name = f"no_such_db_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+psycopg2://postgres:not-a-real-password@127.0.0.1:5432/{name}"
    result, took = _run(tmp_path, METRICS_WAREHOUSE_URL=url)
    assert result.returncode == 1
    assert took < 10, took
    assert _error_lines(result) == [
        f'error: cannot connect to the warehouse: database "{name}" does not exist on '
        "127.0.0.1:5432"
    ]
    assert "not-a-real-password" not in result.stdout + result.stderr


def test_an_unreachable_meta_host_is_named_after_its_short_budget(tmp_path):
    port = _closed_port()
    result, took = _run(
        tmp_path, META_API_BASE_URL=f"http://127.0.0.1:{port}", META_CONNECT_BUDGET_SECONDS="3"
    )
    assert result.returncode == 1
    assert 3 <= took < 20, took
    assert _error_lines(result) == [
        f"error: cannot connect to the Meta API at http://127.0.0.1:{port} "
        "(ConnectionRefusedError) within 3s: check META_API_BASE_URL and the network"
    ]
    assert f"cannot connect to http://127.0.0.1:{port} (ConnectionRefusedError); retrying" in (
        result.stdout
    )
    assert SANDBOX_TOKEN not in result.stdout + result.stderr


def test_a_bad_clients_file_is_one_line_and_verbose_shows_the_trace(tmp_path):
    clients = tmp_path / "clients.yaml"
    clients.write_text("clients:\n  - id: lakeside\n    name: Lakeside\n    budget: 12\n")
    result, _ = _run(tmp_path, METRICS_CLIENTS_FILE=str(clients))
    assert result.returncode == 1
    assert _error_lines(result) == [
        f"error: {clients}: client 'lakeside', field 'meta_ad_account_id': Field required; "
        "client 'lakeside', field 'budget': unknown key"
    ]
    verbose, _ = _run(tmp_path, "--verbose", METRICS_CLIENTS_FILE=str(clients))
    assert verbose.returncode == 1
    assert "Traceback (most recent call last)" in verbose.stderr
    assert "ClientsFileError" in verbose.stderr


def test_a_missing_token_is_named(tmp_path):
    result, took = _run(tmp_path, META_ACCESS_TOKEN="")
    assert result.returncode == 1
    assert took < 10, took
    lines = _error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: META_ACCESS_TOKEN is not set"), lines


def _retries(instance, run_ids: list[str]) -> int:
    return sum(
        len(instance.get_records_for_run(r, of_type=DagsterEventType.STEP_UP_FOR_RETRY).records)
        for r in run_ids
    )


def test_a_refused_meta_host_inside_a_run_fails_the_step_once(catalog, instance, tmp_path):
    """Without the command line's preflight (a schedule's run): the client gives up after its
    connect budget, and the step retry policy leaves the step failed."""
    port = _closed_port()
    resources = make_resources(
        f"http://127.0.0.1:{port}",
        f"sqlite:///{tmp_path / 'warehouse.sqlite'}",
        connect_budget_seconds=0.5,
    )
    defs = build_definitions(catalog, resources)
    outcome = materialize_window(
        defs,
        catalog,
        instance,
        NOW.date() - timedelta(days=3),
        NOW.date() - timedelta(days=3),
        ["canyon_lodge"],
        now=NOW,
    )
    assert not outcome.success
    assert [s.stage for s in outcome.stages] == ["meta_ad_objects"]
    assert (
        f"cannot connect to http://127.0.0.1:{port} (ConnectionRefusedError)" in (outcome.errors[0])
    )
    assert _retries(instance, [s.run_id for s in outcome.stages]) == 0


def test_a_missing_database_inside_a_run_fails_the_step_once(catalog, instance, sandbox):
    require_postgres().dispose()
    name = f"no_such_db_{uuid.uuid4().hex[:8]}"
    defs = build_definitions(
        catalog, make_resources(sandbox.url, f"postgresql+psycopg2://postgres@127.0.0.1/{name}")
    )
    day = NOW.date() - timedelta(days=3)
    with pytest.raises(WarehouseUnavailableError, match=f'database "{name}" does not exist'):
        materialize_window(defs, catalog, instance, day, day, ["canyon_lodge"], now=NOW)
    runs = instance.get_runs()
    assert len(runs) == 1 and runs[0].status.value == "FAILURE"
    assert _retries(instance, [runs[0].run_id]) == 0


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_sandbox_command_stops_when_asked(stop_signal):
    port = _closed_port()
    process = subprocess.Popen(
        [COMMAND, "sandbox", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert (
            process.stdout.readline().strip() == f"Meta sandbox serving on http://127.0.0.1:{port}"
        )
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stderr.read() == ""
