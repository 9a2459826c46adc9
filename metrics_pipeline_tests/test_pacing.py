"""Pacing alerts: a client planted 30 % over its budget pace is alerted once, with its
projection; raising its budget in the clients file sends exactly one recovery."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from dagster import AssetCheckKey, AssetKey, build_sensor_context

from metrics_pipeline.automation.notifier import AlertNotifier
from metrics_pipeline.catalog import build_catalog
from metrics_pipeline.config.clients import load_clients
from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import run_stage
from metrics_pipeline.sandbox.ground_truth import day_truth
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline_tests.conftest import NOW, make_resources
from metrics_pipeline_tests.helpers import days_between, local_today
from metrics_pipeline_tests.receivers import webhook_receiver

ACCOUNT = "1000000003"  # Altstadt Apartments, EUR, Europe/Berlin
CLIENT = "altstadt_apartments"
CLIENTS_FILE = """clients:
  - id: altstadt_apartments
    name: Altstadt Apartments
    meta_ad_account_id: act_1000000003
    timezone: Europe/Berlin
    currency: EUR
    monthly_budget: {budget}
"""


def write_clients(folder: Path, budget: Decimal) -> Path:
    path = folder / f"clients-{budget}.yaml"
    path.write_text(CLIENTS_FILE.format(budget=budget))
    return path


def rollups_run(catalog, sandbox, url, instance):
    """client_kpi_rollups and its checks, with the clients file as it is now."""
    defs = build_definitions(catalog, make_resources(sandbox.url, url))
    run_stage(
        defs, instance, "rollups", [AssetKey("client_kpi_rollups")], CLIENT, CLIENT, {}, "ERROR"
    )
    return defs


def tick(defs, instance, cursor, hook_url):
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources={"alerts": AlertNotifier(webhook_url=hook_url)}
    )
    return defs.resolve_sensor_def("check_alert_sensor").evaluate_tick(context).cursor


def test_off_pace_alerts_once_and_recovers_once(world, instance, tmp_path):
    today = local_today(world, ACCOUNT, NOW)  # 2026-11-18 in Berlin
    month_days = 30
    mtd = days_between(today.replace(day=1), date.fromordinal(today.toordinal() - 1))
    spend = sum((day_truth(world, ACCOUNT, d, 0, today).spend for d in mtd), Decimal(0))
    projected = (spend * month_days / len(mtd)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    planted = (projected / Decimal("1.30")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    with SandboxServer(world, now=NOW) as sandbox, webhook_receiver() as (hook_url, posts):
        catalog = build_catalog(load_clients(write_clients(tmp_path, planted)))
        defs = build_definitions(catalog, make_resources(sandbox.url, url))
        for selection, first, last in (
            ([AssetKey("meta_ad_objects")], CLIENT, CLIENT),
            (
                [AssetKey("meta_insights"), AssetKey("daily_kpi_data")],
                f"{CLIENT}|{mtd[0]}",
                f"{CLIENT}|{mtd[-1]}",
            ),
        ):
            assert run_stage(defs, instance, "setup", selection, first, last, {}, "ERROR").success
        cursor = None
        for _ in range(2):  # the same month and condition alerts only once
            defs = rollups_run(catalog, sandbox, url, instance)
            cursor = tick(defs, instance, cursor, hook_url)
        failed = [p["text"] for p in posts if "client_kpi_rollups:pacing" in p["text"]]
        assert len(failed) == 1, failed
        assert "Check failed: client_kpi_rollups:pacing (1 new)" in failed[0]
        assert f"client {CLIENT}, date 2026-11 spend" in failed[0]
        assert f"projected={projected}" in failed[0]
        assert f"budget {planted} (70%-115%)" in failed[0]
        assert f"days_left={month_days - len(mtd)}" in failed[0]
        # The budget is raised in the clients file: one recovery, and nothing more after it.
        raised = build_catalog(load_clients(write_clients(tmp_path, projected)))
        for _ in range(2):
            defs = rollups_run(raised, sandbox, url, instance)
            cursor = tick(defs, instance, cursor, hook_url)
        pacing = [p["text"] for p in posts if "client_kpi_rollups:pacing" in p["text"]]
        assert len(pacing) == 2, pacing
        assert "Check recovered: client_kpi_rollups:pacing (1)" in pacing[1]
        assert f"client {CLIENT}, date 2026-11 spend" in pacing[1]


def test_clients_without_budget_or_targets_are_skipped_and_say_so(world, instance, tmp_path):
    path = tmp_path / "clients.yaml"
    path.write_text(CLIENTS_FILE.replace("    monthly_budget: {budget}\n", ""))
    catalog = build_catalog(load_clients(path))
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    with SandboxServer(world, now=NOW) as sandbox:
        defs = build_definitions(catalog, make_resources(sandbox.url, url))
        yesterday = f"{CLIENT}|{NOW.date().replace(day=17)}"
        assert run_stage(
            defs, instance, "o", [AssetKey("meta_ad_objects")], CLIENT, CLIENT, {}, "ERROR"
        ).success
        assert run_stage(
            defs,
            instance,
            "d",
            [AssetKey("meta_insights"), AssetKey("daily_kpi_data")],
            yesterday,
            yesterday,
            {},
            "ERROR",
        ).success
        rollups_run(catalog, sandbox, url, instance)
    key = AssetCheckKey(AssetKey("client_kpi_rollups"), "pacing")
    record = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)[0]
    evaluation = record.event.dagster_event.event_specific_data
    assert evaluation.passed
    assert evaluation.metadata["skipped"].value == {
        CLIENT: [
            "spend: no monthly_budget",
            "reservations: no reservations target",
            "conversions: no conversions target",
        ]
    }
