"""The sandbox answers as Meta does today: retired attribution windows are left out, reach is
missing from old breakdown queries, failed report runs carry their error details."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import requests

from metrics_pipeline.catalog import build_catalog
from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.ground_truth import day_truth
from metrics_pipeline.sandbox.server import SANDBOX_TOKEN, SandboxServer
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import make_resources
from metrics_pipeline_tests.helpers import local_today
from metrics_pipeline_tests.truth import normal_expected, stored_kpis

AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
ACCOUNT = "act_1000000001"


def insights(sandbox, since, until=None, **extra) -> list[dict]:
    params = {
        "level": "ad",
        "time_increment": 1,
        "breakdowns": json.dumps(["country"]),
        "time_range": json.dumps(
            {"since": since.isoformat(), "until": (until or since).isoformat()}
        ),
        "fields": "ad_id,spend,impressions,reach,actions",
        "limit": 500,
        **extra,
    }
    response = requests.get(
        f"{sandbox.url}/v25.0/{ACCOUNT}/insights", params=params, headers=AUTH, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_retired_windows_are_left_out_and_served_ones_split_the_value(sandbox, now):
    windows = ["7d_click", "7d_view", "28d_view", "1d_view", "1d_ev"]
    rows = insights(
        sandbox,
        now.date() - timedelta(days=3),
        action_attribution_windows=json.dumps(windows),
    )
    actions = [a for row in rows for a in row.get("actions", [])]
    assert actions
    for action in actions:
        assert set(action) == {"action_type", "value", "7d_click", "1d_view", "1d_ev"}
        # Click and view windows partition the conversions the unified value counts.
        assert int(action["7d_click"]) + int(action["1d_view"]) == int(action["value"])


# The world's campaigns run from 400 days before NOW; "today" is pinned 14 months after the
# backfilled days so they are both in the world and over 13 months back.
LATER = datetime(2026, 12, 21, 20, 0, tzinfo=UTC)
OLD_DAYS = [date(2025, 10, 20), date(2025, 10, 21), date(2025, 10, 22)]


def test_breakdowns_starting_over_13_months_back_come_without_reach(world):
    with SandboxServer(world, now=LATER) as sandbox:
        old = insights(sandbox, OLD_DAYS[0])
        # 2025-11-21 is within 13 months of 2026-12-21 in every account's timezone.
        recent = insights(sandbox, date(2025, 11, 22))
    assert old and all("reach" not in row for row in old)
    assert recent and all(int(row["reach"]) > 0 for row in recent)


def test_a_backfill_14_months_back_stores_null_reach_and_true_daily_kpis(
    world, demo_clients, warehouse_url, instance
):
    catalog = build_catalog(demo_clients, history_start="2025-06-01")
    client = "harbour_view_hotel"
    with SandboxServer(world, now=LATER) as sandbox:
        defs = build_definitions(catalog, make_resources(sandbox.url, warehouse_url, now=LATER))
        outcome = materialize_window(defs, catalog, instance, OLD_DAYS[0], OLD_DAYS[-1], [client])
    assert outcome.success, outcome.errors
    warehouse = WarehouseResource(url=warehouse_url)
    raw = warehouse.read("meta_insights", {"client_id": client})
    assert len(raw) > 0 and raw["reach"].isna().all()
    daily = warehouse.read("daily_kpi_data", {"client_id": client})
    assert sorted(daily["date"]) == OLD_DAYS
    today = local_today(world, ACCOUNT, LATER)
    for row in daily.to_dict("records"):
        truth = day_truth(world, ACCOUNT, row["date"], 0, today)
        assert stored_kpis(row) == normal_expected(truth), row["date"]


class RecordingLog:
    """The client's log, kept: a stand-in for Dagster's step log, nothing else changes."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, message: str) -> None:
        self.lines.append(("info", message))

    def warning(self, message: str) -> None:
        self.lines.append(("warning", message))

    def error(self, message: str) -> None:
        self.lines.append(("error", message))


def test_a_failed_report_names_its_code_subcode_title_and_user_message(world, now):
    with SandboxServer(world, now=now) as sandbox:
        sandbox.inject("report_failed", count=1, account=ACCOUNT.removeprefix("act_"))
        log = RecordingLog()
        api = make_resources(sandbox.url, "sqlite://", now=now, sync_max_days=1)["meta"].client(log)
        days = (now.date() - timedelta(days=5), now.date() - timedelta(days=3))
        chunks = list(api.insight_chunks(ACCOUNT, *days, ("7d_click",), "harbour_view_hotel"))
        # Straight from the sandbox: what a v25.0 failed job carries.
        (failed,) = [k for k, r in sandbox.state.reports.items() if r["fault"] == "report_failed"]
        status = requests.get(f"{sandbox.url}/v25.0/{failed}", headers=AUTH, timeout=10).json()
    assert sum(len(rows) for _, _, rows in chunks) > 0  # the retry completed the range
    assert status["async_status"] == "Job Failed"
    assert isinstance(status["error_code"], int) and status["error_code"] < 0
    for key in ("error_message", "error_subcode", "error_user_title", "error_user_msg"):
        assert status[key], key
    (line,) = [m for level, m in log.lines if level == "warning" and "Job Failed" in m]
    assert line == (
        "Report for client 'harbour_view_hotel', account act_1000000001, insights "
        f"{days[0]}..{days[1]} ended as 'Job Failed' (code {status['error_code']}, subcode "
        f"{status['error_subcode']}, message {status['error_message']!r}, title "
        f"{status['error_user_title']!r}, user message {status['error_user_msg']!r}) "
        "(attempt 1)"
    )
