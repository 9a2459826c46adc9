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
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
from metrics_pipeline.sandbox.server import SANDBOX_TOKEN, SandboxServer
from metrics_pipeline_tests.conftest import BUNDLED_CLIENTS, NOW, home_instance, make_resources

ROOT = Path(__file__).parents[1]
ARTIFACTS = ROOT / "artifacts" / "ui"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _browser():
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1600,1000",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _screenshot(browser, path: Path) -> None:
    """Dismiss the UI's first-visit dialog (it can appear late), then save the page."""
    quiet_since = time.monotonic()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 3:
        for button in browser.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
            button.click()
            quiet_since = time.monotonic()
        time.sleep(0.3)
    browser.save_screenshot(str(path))


def _open(browser, url: str, *texts: str) -> str:
    """Load `url`, close the first-visit dialog, wait until every text is on the page."""
    browser.get(url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        skip = browser.find_elements(By.XPATH, "//button[normalize-space()='Skip']")
        for button in skip:
            button.click()
        page = browser.page_source
        if not skip and all(text in page for text in texts):
            time.sleep(1)  # let the last requests paint
            return browser.page_source
        time.sleep(0.5)
    missing = [t for t in texts if t not in browser.page_source]
    raise AssertionError(f"{url}: never showed {missing}")


def _plots(browser, charts: tuple[str, ...]) -> None:
    """Switch the asset's metadata to Plots and wait until each chart is drawn."""
    browser.find_element(By.XPATH, "//button[normalize-space()='Plots']").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        labels = browser.find_element(By.TAG_NAME, "body").text.splitlines()
        drawn = len(browser.find_elements(By.TAG_NAME, "canvas"))
        if all(chart in labels for chart in charts) and drawn >= len(charts):
            heading = browser.find_element(By.XPATH, "//*[normalize-space()='Metadata']")
            browser.execute_script("arguments[0].scrollIntoView();", heading)
            time.sleep(1)
            return
        time.sleep(0.5)
    raise AssertionError(f"plots never drew {charts} ({drawn} charts)")


@pytest.fixture
def ui(world, catalog, tmp_path):
    if CHROMIUM is None or CHROMEDRIVER is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium chromium-driver)")
    home = tmp_path / "home"
    warehouse_url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    port = _free_port()
    with SandboxServer(world, now=NOW) as sandbox:
        with home_instance(home) as instance:
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
            "METRICS_FX_RATES_URL": sandbox.url + FEED_PATH,
            # Nothing launches behind the test: the UI shows what the test made.
            "METRICS_AUTOMATION": "off",
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
            browser = _browser()
            try:
                yield base, browser
            finally:
                browser.quit()
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=60)


def test_the_ui_shows_the_graph_checks_and_partitions(ui):
    base, browser = ui
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _open(
        browser,
        f"{base}/assets",
        "meta_ad_objects",
        "meta_insights",
        "daily_kpi_data",
        "campaign_summaries",
        "current_week_cache",
        "client_kpi_rollups",
        "collection_health",
    )
    _screenshot(browser, ARTIFACTS / "asset_catalog.png")
    _open(
        browser, f"{base}/asset-groups", "Global asset lineage", "meta", "kpis", "serving", "health"
    )
    _screenshot(browser, ARTIFACTS / "asset_graph.png")

    # 8 days x 4 clients were materialised before the UI started.
    _open(
        browser,
        f"{base}/assets/daily_kpi_data?view=partitions",
        "harbour_view_hotel",
        "sakura_ryokan",
        (NOW.date() - timedelta(days=5)).isoformat(),
        "Materialized (32)",
    )
    _screenshot(browser, ARTIFACTS / "daily_kpi_data_partitions.png")

    _open(
        browser,
        f"{base}/assets/daily_kpi_data?view=checks",
        "quality",
        "consistency",
        "completeness",
        "freshness",
        "conversion_tracking",
        "kpi_anomalies",
    )
    _screenshot(browser, ARTIFACTS / "daily_kpi_data_checks.png")
    assert (ARTIFACTS / "daily_kpi_data_partitions.png").stat().st_size > 10_000

    # The KPIs each materialisation records are charted: Overview -> Metadata -> Plots, per
    # partition for the daily rows, per materialisation for the portfolio.
    for asset in ("daily_kpi_data", "portfolio_kpis"):
        _open(
            browser,
            f"{base}/assets/{asset}",
            "Metadata",
            "latest_week" if asset[0] == "p" else "cpa",
        )
        _plots(browser, ("spend", "reservations", "roas", "cpa"))
        _screenshot(browser, ARTIFACTS / f"{asset}_plots.png")
