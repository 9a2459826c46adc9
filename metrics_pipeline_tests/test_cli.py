"""The `metrics-pipeline` command as a user runs it: real processes, real instance."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from dagster import AssetKey, DagsterInstance

from metrics_pipeline.checks.completeness import completeness_by_client
from metrics_pipeline.checks.settings import CheckSettings
from metrics_pipeline.config.clients import load_clients
from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
from metrics_pipeline.sandbox.server import SANDBOX_TOKEN
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import BUNDLED_CLIENTS, NOW

DEMO_CLIENTS = ("harbour_view_hotel", "canyon_lodge", "altstadt_apartments", "sakura_ryokan")

# The console script installed beside this interpreter (the venv may not be on PATH).
COMMAND = str(Path(sys.executable).with_name("metrics-pipeline"))


def _env(tmp_path, **extra) -> dict[str, str]:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "METRICS_CLIENTS_FILE": str(BUNDLED_CLIENTS),
        "METRICS_WAREHOUSE_URL": f"sqlite:///{tmp_path / 'warehouse.sqlite'}",
        "METRICS_AS_OF": NOW.isoformat(),  # the sandbox's "now" too: never the real clock
        **extra,
    }
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


def test_materialize_records_dagster_runs_and_fills_the_warehouse(tmp_path, sandbox, now):
    start, end = now.date() - timedelta(days=9), now.date() - timedelta(days=2)
    result = subprocess.run(
        [
            COMMAND,
            "materialize",
            "--start",
            str(start),
            "--end",
            str(end),
            "--client",
            "altstadt_apartments",
            "--client",
            "sakura_ryokan",
        ],
        env=_env(
            tmp_path,
            META_API_BASE_URL=sandbox.url,
            META_ACCESS_TOKEN=SANDBOX_TOKEN,
            METRICS_FX_RATES_URL=sandbox.url + FEED_PATH,
            METRICS_AS_OF=now.isoformat(),
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Twelve checks ran: api_version, the raw and daily quality, daily consistency, the
    # conversion tracking and KPI anomaly watches (8 days are too few to judge: they pass),
    # weekly consistency, the cache's and the rollups' consistency, pacing, rates and the
    # portfolio's consistency. Only 8 of the month's 17 elapsed days are collected, so both
    # clients project under 70 % of their budgets: pacing, a non-blocking WARN, is a warning
    # and not a failure.
    assert (
        "checks: 12 evaluated, none failed; 1 warning(s): client_kpi_rollups:pacing"
        in result.stdout.splitlines()
    ), result.stdout
    warehouse = WarehouseResource(url=f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    daily = warehouse.read("daily_kpi_data")
    assert sorted(set(daily["client_id"])) == ["altstadt_apartments", "sakura_ryokan"]
    assert len(daily) == 2 * 8
    with DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        runs = instance.get_runs()
        assert runs and all(r.is_success for r in runs)
    assert SANDBOX_TOKEN not in result.stdout + result.stderr


def test_materialize_refuses_unknown_clients_and_future_days(tmp_path, sandbox, now):
    env = _env(
        tmp_path,
        META_API_BASE_URL=sandbox.url,
        META_ACCESS_TOKEN=SANDBOX_TOKEN,
        METRICS_AS_OF=now.isoformat(),
    )
    day = str(now.date() - timedelta(days=3))
    unknown = subprocess.run(
        [COMMAND, "materialize", "--start", day, "--end", day, "--client", "nobody"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unknown.returncode == 2
    assert "unknown client id(s) 'nobody'" in unknown.stderr
    future = str(now.date() + timedelta(days=5))
    late = subprocess.run(
        [COMMAND, "materialize", "--start", day, "--end", future],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert late.returncode == 2
    assert f"--end {future} is in the future" in late.stderr


def test_a_failed_collection_exits_non_zero_naming_the_client(tmp_path, sandbox, now):
    day = str(now.date() - timedelta(days=3))
    result = subprocess.run(
        [COMMAND, "materialize", "--start", day, "--end", day, "--client", "canyon_lodge"],
        env=_env(tmp_path, META_API_BASE_URL=sandbox.url, META_ACCESS_TOKEN="not-the-token"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "client 'canyon_lodge', account act_1000000002" in result.stderr
    assert "code 190" in result.stderr
    assert "not-the-token" not in result.stdout + result.stderr
    # The refusal, not stack traces; and a failed run never reads as "all passed".
    assert "Traceback" not in result.stdout + result.stderr
    assert "checks: 0 evaluated, none failed, but the run failed" in result.stdout
    assert "all passed" not in result.stdout


def test_the_demo_prints_a_summary_for_every_demo_client_and_leaves_a_deployment_alone(
    tmp_path,
):
    """Pointed at a "production" instance and warehouse, the demo uses neither and says so."""
    production = tmp_path / "production"
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("META_", "METRICS_", "DAGSTER_HOME"))
        },
        "DAGSTER_HOME": str(production / "home"),
        "METRICS_WAREHOUSE_URL": f"sqlite:///{production / 'warehouse.sqlite'}",
        "META_API_BASE_URL": "http://127.0.0.1:9",
    }
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        [COMMAND, "demo"], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == (
        "demo: ignoring DAGSTER_HOME, METRICS_WAREHOUSE_URL, META_API_BASE_URL "
        "(the demo uses only its own sandbox and folder)"
    )
    for client_id in ("harbour_view_hotel", "canyon_lodge", "altstadt_apartments", "sakura_ryokan"):
        lines = [line for line in result.stdout.splitlines() if line.startswith(client_id)]
        assert len(lines) == 2 and "not materialised" not in "".join(lines), result.stdout
    home = work / ".metrics_pipeline" / "dagster_home"
    # The checks line names the non-blocking pacing warning as such, never as a failure.
    (checks,) = [line for line in result.stdout.splitlines() if line.startswith("  checks:")]
    assert "failed:" not in checks, checks
    # The README's sample output is what the demo prints, figures and paths aside.
    sample = _readme_demo_sample()
    printed = {_shape(line) for line in result.stdout.splitlines()}
    for line in DEMO_LINES_THE_README_SHOWS:
        assert any(_shape(s).startswith(line) for s in sample), line
        assert any(p.startswith(line) for p in printed), (line, result.stdout)
    assert (home / "metrics_warehouse.sqlite").is_file()
    assert f"Warehouse: sqlite:///{home / 'metrics_warehouse.sqlite'}" in result.stdout
    assert not production.exists()
    _assert_the_demo_history_is_whole(result.stdout, home)


def _assert_the_demo_history_is_whole(stdout: str, home: Path) -> None:
    """The demo's history starts on the Monday six weeks back, where its partitions start:
    every client has every day from there to its last collected day, so the UI shows the
    days filled and the completeness check, counting from that start, finds none missing."""
    (window,) = [line for line in stdout.splitlines() if line.startswith("Materialising ")]
    start, end = (date.fromisoformat(part) for part in window.split()[1:4:2])
    assert start.weekday() == 0, start  # a Monday
    assert 42 <= (end - timedelta(days=1) - start).days <= 48, (start, end)
    assert f"  campaign_summaries/weekly: harbour_view_hotel|{start} .. " in stdout
    # Clients whose zone has not begun the UTC date `end` are collected to their own today:
    # the day before `end`, or two days before in the hours a zone behind UTC has not begun
    # the UTC today either.
    behind = {
        match["client"]: date.fromisoformat(match["last"])
        for match in re.finditer(
            rf"^  note: (?P<client>\w+): {end} has not begun in [\w/]+; "
            r"collecting to (?P<last>[\d-]+)$",
            stdout,
            flags=re.MULTILINE,
        )
    }
    assert set(behind.values()) <= {end - timedelta(days=1), end - timedelta(days=2)}, behind
    with DagsterInstance.from_config(str(home)) as instance:
        stored = {str(k) for k in instance.get_materialized_partitions(AssetKey("daily_kpi_data"))}
    for client in DEMO_CLIENTS:
        last = behind.get(client, end)
        days = [start + timedelta(days=n) for n in range((last - start).days + 1)]
        assert {k for k in stored if k.startswith(client + "|")} == {
            f"{client}|{day}" for day in days
        }, client
    # The completeness the check reports from that history start: every due day is stored.
    warehouse = WarehouseResource(url=f"sqlite:///{home / 'metrics_warehouse.sqlite'}")
    found = completeness_by_client(
        load_clients(BUNDLED_CLIENTS), warehouse, start, datetime.now(UTC), CheckSettings()
    )
    missing = {client: c.missing for client, c in found.items()}
    assert missing == {client: [] for client in DEMO_CLIENTS}
    assert all(len(c.due) >= 41 for c in found.values())


# Lines of the demo's output, as `_shape` writes them, that the README's sample must show.
DEMO_LINES_THE_README_SHOWS = [
    "Meta sandbox: <url> Dagster instance: <path>",
    "Materialising N .. N for the demo clients",
    "meta_ad_objects: harbour_view_hotel .. sakura_ryokan",
    "fx_rates: N .. N",
    "portfolio_kpis",
    "checks: N evaluated, ",
    "Done in Ns",
    "client period spend reservations ROAS",
    "harbour_view_hotel week of N N NZD N N",
    "harbour_view_hotel week to date (provisional) N NZD N N",
    "sakura_ryokan week of N N JPY N N",
    "all clients week of N N EUR N N",
    "off pace this month:",
    "Warehouse: <url>",
    "Open the UI on this instance with the sandbox still serving:",
    "<path> demo --ui (then <url>",
]


def _shape(line: str) -> str:
    """A line of output without what changes from run to run: URLs, paths, numbers, dates."""
    line = re.sub(r"\b\w+://\S+", "<url>", line)
    line = re.sub(r"(?<!\w)[.\w-]*/\S+", "<path>", line)
    line = re.sub(r"\d[\d,.:|%-]*", "N", line)
    return " ".join(line.split())


def _readme_demo_sample() -> list[str]:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    after = readme.split("The demo starts the bundled Meta sandbox", 1)[1]
    return after.split("```\n", 2)[1].splitlines()
