"""Every fault Meta throws, injected by the sandbox over real HTTP.

Retryable faults must leave the warehouse EXACTLY equal to the ground truth (no lost day,
no duplicate); never-retry faults must fail fast with a clear message while the other
clients' data is stored and correct.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.ground_truth import day_truth
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import NOW, make_resources
from metrics_pipeline_tests.helpers import days_between, local_today
from metrics_pipeline_tests.truth import normal_expected, stored_kpis

FAST = {
    "request_timeout_seconds": 0.5,
    "report_stall_seconds": 0.5,
    "slow_down_max_pause_seconds": 1.0,
}


@pytest.fixture
def fault_sandbox(world):
    with SandboxServer(world, now=NOW) as server:
        yield server


@pytest.fixture
def run_window(fault_sandbox, catalog, instance, tmp_path):
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    defs = build_definitions(catalog, make_resources(fault_sandbox.url, url, **FAST))

    def run(days: int, **settings):
        runs_on = defs
        if settings:
            resources = make_resources(fault_sandbox.url, url, **FAST, **settings)
            runs_on = build_definitions(catalog, resources)
        start = NOW.date() - timedelta(days=days + 1)
        end = NOW.date() - timedelta(days=2)
        outcome = materialize_window(runs_on, catalog, instance, start, end)
        return outcome, WarehouseResource(url=url), (start, end)

    return run


def assert_equals_ground_truth(warehouse, world, catalog, window, clients=None):
    for client in catalog.clients:
        if clients is not None and client.id not in clients:
            continue
        today = local_today(world, client.meta_ad_account_id, NOW)
        days = days_between(*window)
        daily = warehouse.read("daily_kpi_data", {"client_id": client.id}, ["date"])
        assert list(daily["date"]) == days, client.id
        insights = warehouse.read("meta_insights", {"client_id": client.id})
        truths = [day_truth(world, client.meta_ad_account_id, d, 0, today) for d in days]
        assert len(insights) == sum(t.rows for t in truths), client.id  # no duplicate row
        for row, truth in zip(daily.to_dict("records"), truths, strict=True):
            assert stored_kpis(row) == normal_expected(truth), (client.id, row["date"])


RETRYABLE = [
    ("throttle_app", {}),
    ("throttle_user", {}),
    ("throttle_api", {}),
    ("throttle_calls", {}),
    ("throttle_insights", {"regain_minutes": 0.01}),
    ("unknown_error", {}),
    ("service_unavailable", {}),
    ("transient", {}),
    ("http_502", {}),
    ("slow", {"delay_seconds": 1.5}),
    ("drop", {}),
    ("truncate", {}),
]


@pytest.mark.parametrize(("kind", "options"), RETRYABLE, ids=[k for k, _ in RETRYABLE])
def test_retryable_faults_lose_nothing(kind, options, fault_sandbox, run_window, world, catalog):
    fault = fault_sandbox.inject(kind, count=3, route="insights", **options)
    outcome, warehouse, window = run_window(days=4)
    assert outcome.success, outcome.errors
    assert fault.fired == 3
    assert_equals_ground_truth(warehouse, world, catalog, window)


def test_too_much_data_splits_the_range(fault_sandbox, run_window, world, catalog):
    # Every request spanning more than one day is refused, sync and async alike.
    fault = fault_sandbox.inject("reduce_data", count=-1, route="insights", min_days=1)
    outcome, warehouse, window = run_window(days=12)
    assert outcome.success, outcome.errors
    assert fault.fired >= len(catalog.clients)
    assert_equals_ground_truth(warehouse, world, catalog, window)


@pytest.mark.parametrize("failures", [1, 2, 6])
def test_failed_reports_are_retried_then_split(failures, fault_sandbox, run_window, world, catalog):
    # 1: the retry succeeds; 2: split by campaign; 6: campaigns fail too, split by ad set.
    fault = fault_sandbox.inject("report_failed", count=failures, account="1000000003")
    outcome, warehouse, window = run_window(days=12)
    assert outcome.success, outcome.errors
    assert fault.fired == failures
    assert_equals_ground_truth(warehouse, world, catalog, window)


def test_a_split_reports_pieces_are_started_side_by_side(fault_sandbox, run_window, world, catalog):
    """Every piece's job is started before the first of them is polled, so Meta computes
    them together and the split waits about as long as its slowest piece."""
    account = "1000000003"
    fault_sandbox.inject("report_failed", count=2, account=account)
    outcome, warehouse, window = run_window(days=12)
    assert outcome.success, outcome.errors
    calls = [(r["method"], r["path"]) for r in fault_sandbox.state.requests if account in r["path"]]
    jobs = [i for i, (method, path) in enumerate(calls) if method == "POST"]
    pieces = jobs[2:]  # the job and its retry failed: one piece per campaign
    assert len(pieces) == len(world.account(account).campaigns) > 1, calls
    first_poll = next(
        i for i, (_, path) in enumerate(calls) if i > pieces[0] and "/report_" in path
    )
    assert pieces[-1] < first_poll, calls
    assert_equals_ground_truth(warehouse, world, catalog, window)


def test_a_stalled_report_is_abandoned_and_split(fault_sandbox, run_window, world, catalog):
    fault = fault_sandbox.inject("report_stalled", count=2, account="1000000001")
    outcome, warehouse, window = run_window(days=12)
    assert outcome.success, outcome.errors
    assert fault.fired == 2
    assert_equals_ground_truth(warehouse, world, catalog, window)


NEVER_RETRY = [
    ("auth", "code 190/463: Error validating access token: Session has expired."),
    ("permission", "code 200: (#200) Requires ads_read permission"),
    ("invalid", "code 100: (#100) Invalid parameter"),
]


@pytest.mark.parametrize(("kind", "meta_text"), NEVER_RETRY, ids=[k for k, _ in NEVER_RETRY])
def test_never_retry_faults_fail_fast_and_keep_the_other_clients(
    kind, meta_text, fault_sandbox, run_window, world, catalog
):
    fault = fault_sandbox.inject(kind, count=-1, route="insights", account="1000000002")
    started = time.monotonic()
    # A wrongly retried fault gives up after 3 s of retries instead of the hour a transient
    # error gets, so the assertions below fail within seconds, not after minutes.
    outcome, warehouse, window = run_window(days=4, request_budget_seconds=3.0)
    elapsed = time.monotonic() - started
    assert not outcome.success
    assert fault.fired == 1  # asked once, never again
    # The whole 4-day window, every layer of the three other clients included, on a 2-core
    # machine that may be running the suite's other workers; a retried fault alone would
    # spend minutes.
    assert elapsed < 60
    message = "\n".join(outcome.errors)
    assert "client 'canyon_lodge', account act_1000000002" in message
    assert meta_text in message
    others = {c.id for c in catalog.clients} - {"canyon_lodge"}
    assert_equals_ground_truth(warehouse, world, catalog, window, clients=others)
    assert warehouse.read("daily_kpi_data", {"client_id": "canyon_lodge"}).empty


def test_usage_stays_under_a_tight_limit(fault_sandbox, catalog, instance, tmp_path, world):
    """At full speed this backfill would exceed the limit; the client slows down instead."""
    for client in catalog.clients:
        fault_sandbox.rate_limit(client.meta_ad_account_id, calls=10, window_seconds=2.0)
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    defs = build_definitions(
        catalog,
        make_resources(
            fault_sandbox.url,
            url,
            days_per_request=1,
            sync_max_days=60,
            slow_down_max_pause_seconds=2.0,
        ),
    )
    start, end = NOW.date() - timedelta(days=15), NOW.date() - timedelta(days=2)
    started = time.monotonic()
    outcome = materialize_window(defs, catalog, instance, start, end)
    assert outcome.success, outcome.errors
    assert fault_sandbox.state.throttled == 0
    calls = len([r for r in fault_sandbox.state.requests if "act_1000000001" in r["path"]])
    # More calls than the limit allows in the time taken at full speed: the pacing mattered.
    assert calls > 10
    assert time.monotonic() - started > 2.0
    assert_equals_ground_truth(WarehouseResource(url=url), world, catalog, (start, end))
