"""The command line reads its environment and leaves it as it was: its runs read what they
run on from the process's environment while they last (run in this process, through
`main`)."""

from __future__ import annotations

import gc
import os
import stat
from datetime import timedelta

from metrics_pipeline.cli.main import main
from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
from metrics_pipeline.sandbox.server import SANDBOX_TOKEN
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import BUNDLED_CLIENTS, NOW
from metrics_pipeline_tests.stored_secrets import found_in_files, marker


def test_materialize_leaves_the_environment_and_the_garbage_collector_unchanged(
    tmp_path, monkeypatch, sandbox
):
    # No DAGSTER_HOME and no warehouse URL: the command picks local folders for both.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("METRICS_WAREHOUSE_URL", raising=False)
    monkeypatch.setenv("METRICS_CLIENTS_FILE", str(BUNDLED_CLIENTS))
    monkeypatch.setenv("META_API_BASE_URL", sandbox.url)
    monkeypatch.setenv("META_ACCESS_TOKEN", SANDBOX_TOKEN)
    monkeypatch.setenv("METRICS_FX_RATES_URL", sandbox.url + FEED_PATH)
    monkeypatch.setenv("METRICS_AS_OF", NOW.isoformat())  # the sandbox's "now" too
    before = dict(os.environ)
    # The command freezes its start-up heap and collects less often while its runs last.
    collector = (gc.get_threshold(), gc.get_freeze_count())
    day = str(NOW.date() - timedelta(days=3))
    status = main(["materialize", "--start", day, "--end", day, "--client", "canyon_lodge"])
    assert status == 0
    assert dict(os.environ) == before
    assert (gc.get_threshold(), gc.get_freeze_count()) == collector
    home = tmp_path / ".metrics_pipeline" / "dagster_home"
    warehouse = WarehouseResource(url=f"sqlite:///{home / 'metrics_warehouse.sqlite'}")
    daily = warehouse.read("daily_kpi_data")
    assert list(daily["client_id"]) == ["canyon_lodge"]
    assert [str(d) for d in daily["date"]] == [day]


def test_demo_leaves_the_environment_unchanged_names_what_it_ignores_and_stores_no_secret(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    # Secrets the demo does read: they must not reach what its instance stores.
    kept = {
        "META_APP_SECRET": marker("app-secret"),
        "METRICS_ALERT_SMTP_USERNAME": "alerts",
        "METRICS_ALERT_SMTP_PASSWORD": marker("smtp-password"),
    }
    for name, value in kept.items():
        monkeypatch.setenv(name, value)
    deployment = {
        "DAGSTER_HOME": str(tmp_path / "deployment_home"),
        "METRICS_WAREHOUSE_URL": f"sqlite:///{tmp_path / 'deployment.sqlite'}",
        "META_ACCESS_TOKEN": "placeholder-deployment-token",
        "METRICS_CLIENTS_FILE": str(tmp_path / "no_such_clients.yaml"),
    }
    for name, value in deployment.items():
        monkeypatch.setenv(name, value)
    before = dict(os.environ)
    assert main(["demo"]) == 0
    assert dict(os.environ) == before
    out = capsys.readouterr().out
    ignoring = next(line for line in out.splitlines() if line.startswith("demo: ignoring"))
    assert all(name in ignoring for name in deployment)
    # Nothing landed where the deployment's variables point.
    assert not (tmp_path / "deployment_home").exists()
    assert not (tmp_path / "deployment.sqlite").exists()
    data = tmp_path / ".metrics_pipeline"
    assert (data / "dagster_home" / "metrics_warehouse.sqlite").exists()
    assert (
        found_in_files(data, [kept["META_APP_SECRET"], kept["METRICS_ALERT_SMTP_PASSWORD"]]) == []
    )
    # The instance and the warehouse it made are readable by their owner only.
    assert {
        str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode))
        for p in [data, *data.rglob("*")]
        if stat.S_IMODE(p.stat().st_mode) != (0o700 if p.is_dir() else 0o600)
    } == {}
