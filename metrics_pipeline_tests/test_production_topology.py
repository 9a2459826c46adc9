"""The production topology, as separate processes: the repository's dagster.yaml on a fresh
PostgreSQL database, `dagster code-server start`, `dagster-daemon run` and `dagster-webserver`
on a workspace that points at the gRPC server, the sandbox and a webhook receiver.

Nothing is clicked and no sensor is called by hand: from an empty warehouse the daemon's
own ticks collect, derive and alert. Time is pinned (METRICS_AS_OF and the sandbox's `now`);
only the sensors' intervals are shortened, through METRICS_SENSOR_INTERVAL_SECONDS. The
steps run in order on one deployment, so the module is one test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
from metrics_pipeline.sandbox.ground_truth import period_truth
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline.sandbox.world import World
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import (
    BUNDLED_CLIENTS,
    NOW,
    _postgres_url,
    postgres_schema_url,
    require_postgres,
)
from metrics_pipeline_tests.helpers import days_between, monday_of, month_bounds
from metrics_pipeline_tests.receivers import WebhookReceiver, free_port
from metrics_pipeline_tests.stored_secrets import (
    found_in_database,
    found_in_files,
    marker,
    webserver_answers,
)
from metrics_pipeline_tests.truth import (
    normal_expected,
    portfolio_truth,
    stored_kpis,
    stored_portfolio,
)

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
# A month's first day, so November is a monthly partition (and weeks start on the 2nd).
HISTORY_START = date(2026, 11, 1)
TICK_SECONDS = 5
# Each client's local "yesterday" at NOW (20:00 UTC), settled 2 h into its today: written
# here from the clients' UTC offsets in November, not asked of the pipeline.
LAST_DAY = {
    "harbour_view_hotel": date(2026, 11, 18),  # UTC+13: 09:00 on the 19th
    "canyon_lodge": date(2026, 11, 17),  # UTC-8: 12:00 on the 18th
    "altstadt_apartments": date(2026, 11, 17),  # UTC+1: 21:00 on the 18th
    "sakura_ryokan": date(2026, 11, 18),  # UTC+9: 05:00 on the 19th
}
LOCAL_TODAY = {client: day + timedelta(days=1) for client, day in LAST_DAY.items()}
ACCOUNT = {
    "harbour_view_hotel": "1000000001",
    "canyon_lodge": "1000000002",
    "altstadt_apartments": "1000000003",
    "sakura_ryokan": "1000000004",
}
DAILY, WEEKLY, MONTHLY = (
    AssetKey("daily_kpi_data"),
    AssetKey(["campaign_summaries", "weekly"]),
    AssetKey(["campaign_summaries", "monthly"]),
)
CACHE, ROLLUPS = AssetKey("current_week_cache"), AssetKey("client_kpi_rollups")
RATES, PORTFOLIO = AssetKey("fx_rates"), AssetKey("portfolio_kpis")


def wait_for(what: str, condition: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@contextmanager
def fresh_database() -> Iterator[str]:
    """A database of its own for Dagster's storage, dropped afterwards."""
    engine = require_postgres().execution_options(isolation_level="AUTOCOMMIT")
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(_postgres_url()).set(database=name).render_as_string(False)
    finally:
        with engine.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        engine.dispose()


class Processes:
    """The Dagster services, each its own process group, logs in files."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *command: str) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [str(BIN / command[0]), *command[1:]],
            env=self.env,
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running[name] = process
        return process

    def kill(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.running.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.kill(name)


def graphql(url: str, query: str, variables: dict) -> dict:
    answer = requests.post(url, json={"query": query, "variables": variables}, timeout=60)
    answer.raise_for_status()
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""


SCHEDULES = """
query {
  schedulesOrError(repositorySelector: {
    repositoryLocationName: "metrics_pipeline", repositoryName: "__repository__"
  }) {
    __typename
    ... on Schedules { results { id name } }
  }
}
"""

STOP_SCHEDULE = """
mutation($id: String) {
  stopRunningSchedule(id: $id) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
  }
}
"""


def schedules(url: str) -> list[dict] | None:
    """The code location's schedules as the webserver lists them; None until it serves them."""
    try:
        answer = graphql(url, SCHEDULES, {})["schedulesOrError"]
    except requests.RequestException:
        return None
    return answer["results"] if answer["__typename"] == "Schedules" else None


def switch_off_schedules(url: str) -> list[str]:
    """Every schedule switched off through the webserver, as an operator does in the UI."""
    listed = wait_for("the webserver's schedules", lambda: schedules(url), 120)
    for schedule in listed:
        result = graphql(url, STOP_SCHEDULE, {"id": schedule["id"]})["stopRunningSchedule"]
        assert result["scheduleState"]["status"] == "STOPPED", (schedule["name"], result)
    return sorted(s["name"] for s in listed)


def launch_backfill(url: str, client: str, days: list[date]) -> str:
    params = {
        "partitionNames": [f"{client}|{day}" for day in days],
        "assetSelection": [{"path": ["meta_insights"]}, {"path": ["daily_kpi_data"]}],
    }
    result = graphql(url, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    return result["backfillId"]


def backfill_run(instance: DagsterInstance, backfill_id: str):
    """The backfill's run once it finished, else None."""
    runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
    return runs[0] if len(runs) == 1 and runs[0].is_finished else None


def truth(world: World, client: str, days: list[date]):
    return period_truth(world, ACCOUNT[client], days, 0, LOCAL_TODAY[client])


def collected(client: str, first: date, last: date) -> list[date]:
    """The days of [first, last] the deployment holds for the client."""
    return days_between(max(first, HISTORY_START), min(last, LAST_DAY[client]))


def run_intervals(instance: DagsterInstance, runs, step: str) -> list[tuple[float, float]]:
    """(start, end) of the given step in each run that ran it."""
    intervals = []
    for run in runs:
        times = {}
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is not None and event.step_key == step:
                times.setdefault(event.event_type, entry.timestamp)
        if DagsterEventType.STEP_START in times:
            end = times.get(DagsterEventType.STEP_SUCCESS) or times.get(
                DagsterEventType.STEP_FAILURE
            )
            intervals.append((times[DagsterEventType.STEP_START], end))
    return intervals


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    peak = current = 0
    for _, change in edges:
        current += change
        peak = max(peak, current)
    return peak


def alerts(posts: list[dict], prefix: str, needle: str = "") -> list[str]:
    return [
        p["text"] for p in posts if p["text"].lstrip("*").startswith(prefix) and needle in p["text"]
    ]


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    world = World(anchor=NOW.date())
    # Marker secrets, looked for in everything the deployment stores and serves (step 8).
    secrets = {
        "token": marker("token"),
        "app_secret": marker("app-secret"),
        "password": marker("password"),
        "smtp_password": marker("smtp-password"),
    }
    with (
        fresh_database() as dagster_pg,
        contextmanager(postgres_schema_url)() as warehouse_url,
        SandboxServer(
            world, now=NOW, access_token=secrets["token"], app_secret=secrets["app_secret"]
        ) as sandbox,
        WebhookReceiver() as hook,
    ):
        code_port, web_port = free_port(), free_port()

        def with_password(url: str) -> str:
            # The test server trusts loopback: the password is sent and never checked.
            url = sa.make_url(url).set(password=secrets["password"])
            return url.render_as_string(hide_password=False)

        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": with_password(dagster_pg),
            "METRICS_WAREHOUSE_URL": with_password(warehouse_url),
            "METRICS_CLIENTS_FILE": str(BUNDLED_CLIENTS),
            "METRICS_HISTORY_START": HISTORY_START.isoformat(),
            "METRICS_AS_OF": NOW.isoformat(),
            "METRICS_AUTOMATION": "on",
            "METRICS_SENSOR_INTERVAL_SECONDS": str(TICK_SECONDS),
            "METRICS_ALERT_WEBHOOK_URL": hook.url,
            "METRICS_STEP_MAX_RETRIES": "0",
            "META_API_BASE_URL": sandbox.url,
            "META_ACCESS_TOKEN": secrets["token"],
            "META_APP_SECRET": secrets["app_secret"],
            "METRICS_ALERT_SMTP_USERNAME": "alerts",
            "METRICS_ALERT_SMTP_PASSWORD": secrets["smtp_password"],
            "METRICS_FX_RATES_URL": f"{sandbox.url}{FEED_PATH}",
            "DAGSTER_EVENT_BATCH_SIZE": "1000",
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
        }
        workspace = tmp_path / "workspace.yaml"
        workspace.write_text(
            "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
            f"      port: {code_port}\n      location_name: metrics_pipeline\n"
        )
        for name, value in env.items():
            if name.startswith(("DAGSTER_", "METRICS_", "META_")):
                monkeypatch.setenv(name, value)
        processes = Processes(tmp_path, env)
        try:
            processes.start(
                "code-server",
                "dagster",
                "code-server",
                "start",
                "-m",
                "metrics_pipeline.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(code_port),
            )
            wait_for(
                "the code server",
                lambda: (
                    subprocess.run(
                        [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(code_port)],
                        capture_output=True,
                        env=env,
                        check=False,
                    ).returncode
                    == 0
                ),
                120,
            )
            processes.start(
                "webserver",
                "dagster-webserver",
                "-w",
                str(workspace),
                "-h",
                "127.0.0.1",
                "-p",
                str(web_port),
            )
            graphql_url = f"http://127.0.0.1:{web_port}/graphql"
            # The schedules fire on the wall clock (:05, :35, every 15 minutes), which the
            # pinned clock cannot move: left on, one firing inside a step re-collects days the
            # step counts. test_automation.py evaluates them at pinned instants.
            assert switch_off_schedules(graphql_url) == [
                "attribution_lookback_schedule",
                "current_week_cache_schedule",
                "daily_collection_schedule",
                "health_checks_schedule",
            ]
            processes.start("daemon", "dagster-daemon", "run", "-w", str(workspace))
            with DagsterInstance.get() as instance:
                yield {
                    "instance": instance,
                    "processes": processes,
                    "workspace": workspace,
                    "sandbox": sandbox,
                    "world": world,
                    "hook": hook,
                    "warehouse": WarehouseResource(url=warehouse_url),
                    "graphql": graphql_url,
                    "home": home,
                    "dagster_pg": dagster_pg,
                    "warehouse_url": warehouse_url,
                    "secrets": list(secrets.values()),
                }
        finally:
            processes.stop_all()


@pytest.mark.timeout(1500)  # a whole deployment, from an empty warehouse, in eight steps
def test_the_deployment_runs_by_itself(deployment):
    instance: DagsterInstance = deployment["instance"]
    processes: Processes = deployment["processes"]
    sandbox: SandboxServer = deployment["sandbox"]
    world: World = deployment["world"]
    posts: list[dict] = deployment["hook"].posts
    warehouse: WarehouseResource = deployment["warehouse"]
    wanted = {f"{c}|{d}" for c, last in LAST_DAY.items() for d in days_between(HISTORY_START, last)}

    def daily_done() -> bool:
        return {str(k) for k in instance.get_materialized_partitions(DAILY)} >= wanted

    # 1. The gap sensor asks for every missing day; the daemon runs them through the queue.
    # Killed with SIGKILL once the first runs exist and restarted, it loses and repeats none.
    wait_for(
        "the gap sensor's first runs",
        lambda: instance.get_runs(RunsFilter(job_name="collect_and_derive")),
        180,
    )
    processes.kill("daemon", signal.SIGKILL)
    processes.start("daemon", "dagster-daemon", "run", "-w", str(deployment["workspace"]))
    wait_for("daily KPIs for every client and day", daily_done, 300)
    gap = RunsFilter(tags={"metrics_pipeline/gap_backfill": "true"})
    wait_for(
        "the gap runs to finish", lambda: all(r.is_finished for r in instance.get_runs(gap)), 120
    )
    gap_runs = instance.get_runs(gap)
    assert gap_runs, "the gap sensor launched no run"
    assert {r.job_name for r in gap_runs} == {"collect_and_derive"}
    # the days' exchange rates were asked for too (through UTC tomorrow), and read
    rate_days = {str(d) for d in days_between(HISTORY_START, NOW.date() + timedelta(days=1))}
    wait_for(
        "the exchange rates of every day",
        lambda: {str(k) for k in instance.get_materialized_partitions(RATES)} >= rate_days,
        60,
    )
    rate_runs = instance.get_runs(RunsFilter(tags={"metrics_pipeline/rates_backfill": "true"}))
    assert {r.job_name for r in rate_runs} == {"exchange_rates"}
    # (5.) each requested range ran once: no run key twice, no partition built twice
    keys = [r.tags.get("dagster/run_key") for r in gap_runs]
    assert len(keys) == len(set(keys))
    assert all(r.status == DagsterRunStatus.SUCCESS for r in gap_runs), [r.status for r in gap_runs]
    for run in gap_runs:
        enqueued = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_ENQUEUED)
        assert enqueued, f"run {run.run_id} did not go through the queued run coordinator"
    built = [
        str(r.event_log_entry.dagster_event.partition)
        for run in gap_runs
        for r in instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=100_000
        ).records
        if r.event_log_entry.dagster_event.asset_key == DAILY
    ]
    assert sorted(built) == sorted(wanted)
    # one collection at a time (dagster.yaml's tag limit on collect_and_derive)
    assert most_at_once(run_intervals(instance, gap_runs, "meta_insights")) == 1
    daily = warehouse.read("daily_kpi_data")
    assert len(daily) == len(wanted)  # one row per (client, day): none duplicated

    # 2. Nobody clicks: the automation condition builds weeks, months, cache, rollups and
    # the portfolio in EUR.
    def derived_done() -> bool:
        weeks = {str(k) for k in instance.get_materialized_partitions(WEEKLY)}
        months = {str(k) for k in instance.get_materialized_partitions(MONTHLY)}
        cache = {str(k) for k in instance.get_materialized_partitions(CACHE)}
        rollups = {str(k) for k in instance.get_materialized_partitions(ROLLUPS)}
        return (
            weeks
            >= {f"{c}|{m}" for c in LAST_DAY for m in ("2026-11-02", "2026-11-09", "2026-11-16")}
            and months >= {f"{c}|2026-11-01" for c in LAST_DAY}
            and cache >= set(LAST_DAY)
            and rollups >= set(LAST_DAY)
        )

    wait_for("summaries, cache and rollups", derived_done, 240)
    wait_for(
        "no run in flight",
        lambda: (
            not instance.get_runs(
                RunsFilter(
                    statuses=[
                        DagsterRunStatus.QUEUED,
                        DagsterRunStatus.STARTING,
                        DagsterRunStatus.STARTED,
                    ]
                )
            )
        ),
        120,
    )
    expected_portfolio = portfolio_truth(
        world,
        sandbox.state.ecb,
        ACCOUNT,
        {client: collected(client, HISTORY_START, last) for client, last in LAST_DAY.items()},
        NOW,
    )
    try:
        wait_for(
            "the portfolio of every collected day",
            lambda: stored_portfolio(warehouse) == expected_portfolio,
            120,
        )
    finally:
        stored = stored_portfolio(warehouse)
        assert sorted(stored) == sorted(expected_portfolio)
        wrong = {k: (stored[k], v) for k, v in expected_portfolio.items() if stored[k] != v}
        assert not wrong, list(wrong.items())[:5]
    for client, last in LAST_DAY.items():
        summaries = warehouse.read("campaign_summaries", {"client_id": client})
        for row in summaries.to_dict("records"):
            start = row["summary_date"]
            if row["summary_type"] == "weekly":
                days = collected(client, monday_of(start), monday_of(start) + timedelta(days=6))
            else:
                days = collected(client, *month_bounds(start))
            assert stored_kpis(row) == normal_expected(truth(world, client, days)), (client, start)
            assert row["days_with_data"] == len(days)
        assert sorted(summaries["summary_type"]) == ["monthly", *["weekly"] * 3], client
        cache = warehouse.read("current_week_cache", {"client_id": client}).to_dict("records")
        week = collected(client, monday_of(LOCAL_TODAY[client]), LOCAL_TODAY[client])
        assert len(cache) == 1
        assert stored_kpis(cache[0]) == normal_expected(truth(world, client, week)), client
        rollups = warehouse.read("client_kpi_rollups", {"client_id": client})
        rows = {r["rollup_window"]: r for r in rollups.to_dict("records")}
        last_7 = collected(client, LOCAL_TODAY[client] - timedelta(days=7), last)
        assert stored_kpis(rows["last_7_days"]) == normal_expected(truth(world, client, last_7))

    # 3. A data fault fails a blocking check on the next collection: one alert, the stores
    # above keep their values; once the day collects clean, one recovery message.
    faulty, day = "altstadt_apartments", LAST_DAY["altstadt_apartments"]
    before = {
        t: warehouse.read(t, {"client_id": faulty})
        for t in (
            "campaign_summaries",
            "current_week_cache",
            "client_kpi_rollups",
            "daily_kpi_data",
        )
    }
    assert alerts(posts, "Check failed: meta_insights:quality") == []
    sandbox.inject("clicks_over_impressions", count=-1, account=ACCOUNT[faulty], day=str(day))
    launch_backfill(deployment["graphql"], faulty, [day])
    wait_for(
        "the check alert", lambda: alerts(posts, "Check failed: meta_insights:quality", faulty), 240
    )
    time.sleep(4 * TICK_SECONDS)  # later ticks must not send it again
    assert len(alerts(posts, "Check failed: meta_insights:quality", faulty)) == 1
    for table, frame in before.items():
        after = warehouse.read(table, {"client_id": faulty})
        assert after.equals(frame), table
    sandbox.clear_faults()
    launch_backfill(deployment["graphql"], faulty, [day])
    wait_for(
        "the recovery message",
        lambda: alerts(posts, "Check recovered: meta_insights:quality", faulty),
        240,
    )
    time.sleep(4 * TICK_SECONDS)
    assert len(alerts(posts, "Check recovered: meta_insights:quality", faulty)) == 1

    # 4. A run that fails (a revoked permission) alerts once, naming the client.
    revoked = "canyon_lodge"
    assert alerts(posts, "Run failed", revoked) == []
    sandbox.inject("permission", count=-1, route="insights", account=ACCOUNT[revoked])
    backfill_id = launch_backfill(deployment["graphql"], revoked, [LAST_DAY[revoked]])
    failed_run = wait_for("the failed run", lambda: backfill_run(instance, backfill_id), 240)
    assert failed_run.status == DagsterRunStatus.FAILURE
    wait_for("the run-failure alert", lambda: alerts(posts, "Run failed", revoked), 120)
    time.sleep(4 * TICK_SECONDS)
    sent = alerts(posts, "Run failed", revoked)
    assert len(sent) == 1 and failed_run.run_id[:8] in sent[0], sent
    sandbox.clear_faults()

    # 6. A backfill launched through the webserver for one client and 10 days is one run.
    client, days = "sakura_ryokan", days_between(date(2026, 11, 6), date(2026, 11, 15))
    backfill_id = launch_backfill(deployment["graphql"], client, days)

    def backfill_finished():
        backfill = instance.get_backfill(backfill_id)
        return backfill is not None and backfill.status.value != "REQUESTED" and backfill

    backfill = wait_for("the backfill", backfill_finished, 240)
    assert backfill.status.value in ("COMPLETED", "COMPLETED_SUCCESS"), backfill.status
    runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
    assert len(runs) == 1 and runs[0].status == DagsterRunStatus.SUCCESS
    stored = {
        str(r.event_log_entry.dagster_event.partition)
        for r in instance.get_records_for_run(
            runs[0].run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=100_000
        ).records
        if r.event_log_entry.dagster_event.asset_key == DAILY
    }
    assert stored == {f"{client}|{d}" for d in days}
    assert len(warehouse.read("daily_kpi_data")) == len(wanted)

    # 7. Backfills from the webserver carry no collection tag, so three launched at once run
    # side by side; the meta_api pool (default limit 2) still lets only two call Meta at a
    # time. The sandbox holds the three clients' insights calls until the test lets them go:
    # two are held at once while the third run waits in the queue for a slot.
    three = ["harbour_view_hotel", "canyon_lodge", "sakura_ryokan"]
    holds = {
        client: sandbox.inject(
            "hold", count=-1, route="insights", account=ACCOUNT[client], delay_seconds=100
        )
        for client in three
    }
    ids = {
        client: launch_backfill(
            deployment["graphql"], client, days_between(date(2026, 11, 9), date(2026, 11, 11))
        )
        for client in three
    }

    def held() -> int:
        return sum(h.held for h in holds.values())

    def waiting_for_a_slot(run_id: str) -> bool:
        """Kept back by the pool: in the queue, or started with its step pending a slot."""
        if instance.get_run_by_id(run_id).status == DagsterRunStatus.QUEUED:
            return True
        pending = instance.event_log_storage.get_concurrency_info("meta_api").pending_steps
        return any(p.run_id == run_id and p.assigned_timestamp is None for p in pending)

    def the_third_waiting():
        assert held() <= 2, "three calls to Meta at once: the meta_api pool let a third in"
        waiting = [c for c, h in holds.items() if h.fired == 0]
        if held() != 2 or len(waiting) != 1:
            return None
        runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": ids[waiting[0]]}))
        return runs[0] if len(runs) == 1 and waiting_for_a_slot(runs[0].run_id) else None

    try:
        third = wait_for("two calls held and the third run waiting", the_third_waiting, 240)
        # the queue is read every few seconds: the third stays back while two slots are taken
        time.sleep(4 * TICK_SECONDS)
        assert held() == 2
        assert waiting_for_a_slot(third.run_id)
    finally:
        sandbox.clear_faults()  # lets the held calls go

    def all_three_finished():
        runs = [backfill_run(instance, backfill_id) for backfill_id in ids.values()]
        return runs if all(runs) else None

    side_by_side = wait_for("the three backfills", all_three_finished, 300)
    assert [r.status for r in side_by_side] == [DagsterRunStatus.SUCCESS] * 3
    assert most_at_once(run_intervals(instance, side_by_side, "meta_insights")) == 2

    # 8. No secret in anything the deployment stores or serves: the instance folder, Dagster's
    # PostgreSQL storage (snapshots inflated), the warehouse, the webserver's answers on
    # runs, run configuration and resources.
    secrets = deployment["secrets"]
    assert found_in_files(deployment["home"], secrets) == []
    assert found_in_database(deployment["dagster_pg"], secrets) == []
    assert found_in_database(deployment["warehouse_url"], secrets) == []
    answers = webserver_answers(deployment["graphql"])
    assert any("ENV_VAR" in a and "META_ACCESS_TOKEN" in a for a in answers)
    assert [s for s in secrets if any(s in a for a in answers)] == []
