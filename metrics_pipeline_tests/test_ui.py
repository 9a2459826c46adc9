"""The Dagster UI, as a person sees it: `dagster dev` on loopback, headless Chromium.

Screenshots are saved under artifacts/ui/ for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.server import SANDBOX_TOKEN, SandboxServer
from metrics_pipeline_tests.conftest import BUNDLED_CLIENTS, NOW, make_instance, make_resources

ROOT = Path(__file__).parents[1]
ARTIFACTS = ROOT / "artifacts" / "ui"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _chromium(url: str, profile: Path, screenshot: Path | None = None) -> str:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1600,1000",
        "--virtual-time-budget=25000",
    ]
    if screenshot is not None:
        command.append(f"--screenshot={screenshot}")
    else:
        command.append("--dump-dom")
    result = subprocess.run([*command, url], capture_output=True, text=True, timeout=180)
    return result.stdout


@pytest.fixture
def ui(world, catalog, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium chromium-driver)")
    home = tmp_path / "home"
    warehouse_url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    port = _free_port()
    with SandboxServer(world, now=NOW) as sandbox:
        with make_instance(home) as instance:
            defs = build_definitions(catalog, make_resources(sandbox.url, warehouse_url))
            assert materialize_window(
                defs,
                catalog,
                instance,
                NOW.date() - timedelta(days=9),
                NOW.date() - timedelta(days=2),
            ).success
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "METRICS_CLIENTS_FILE": str(BUNDLED_CLIENTS),
            "METRICS_WAREHOUSE_URL": warehouse_url,
            "META_API_BASE_URL": sandbox.url,
            "META_ACCESS_TOKEN": SANDBOX_TOKEN,
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagster",
                "dev",
                "-m",
                "metrics_pipeline.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"{base}/server_info", timeout=2).ok:
                        break
                except requests.RequestException:
                    pass
                time.sleep(1)
            else:
                pytest.fail("dagster dev did not start within 180 s")
            yield base, tmp_path / "chromium"
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=60)


def test_the_ui_shows_the_graph_checks_and_partitions(ui):
    base, profile = ui
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    graph = _chromium(f"{base}/asset-groups", profile)
    for name in ("meta_insights", "daily_kpi_data", "current_week_cache", "client_kpi_rollups"):
        assert name in graph, f"{name} not on the asset graph"
    _chromium(f"{base}/asset-groups", profile, ARTIFACTS / "asset_graph.png")

    partitions = _chromium(f"{base}/assets/daily_kpi_data?view=partitions", profile)
    assert "harbour_view_hotel" in partitions
    assert (NOW.date() - timedelta(days=5)).isoformat() in partitions
    _chromium(
        f"{base}/assets/daily_kpi_data?view=partitions",
        profile,
        ARTIFACTS / "daily_kpi_data_partitions.png",
    )

    checks = _chromium(f"{base}/assets/daily_kpi_data?view=checks", profile)
    for check in ("quality", "consistency", "completeness", "freshness"):
        assert check in checks
    _chromium(
        f"{base}/assets/daily_kpi_data?view=checks",
        profile,
        ARTIFACTS / "daily_kpi_data_checks.png",
    )
    assert (ARTIFACTS / "asset_graph.png").stat().st_size > 10_000
