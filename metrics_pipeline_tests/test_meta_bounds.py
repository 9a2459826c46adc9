"""Bounds of the Graph API client, each proved against a sandbox fault over real HTTP.

An unreachable host, paging or a redirect to another host, a repeated cursor, too many
rows or pages, a body too big or too slow, a report that creeps forever and a result page
Meta finds too big: each ends in a bounded time with an error that names the host, or (the
last) with the same warehouse as a clean run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.meta.client import CallSite, GraphApiClient
from metrics_pipeline.meta.errors import ErrorKind, MetaApiError, is_configuration_error
from metrics_pipeline.meta.resource import MetaAdsResource
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.ground_truth import day_truth
from metrics_pipeline.sandbox.server import SANDBOX_TOKEN, SandboxServer
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import NOW, make_instance, make_resources
from metrics_pipeline_tests.helpers import days_between, finish_within, local_today

ACCOUNT = "act_1000000001"
# The version the test clients call, so request paths do not follow the default.
API_VERSION = "v25.0"
SITE = CallSite("harbor_view", ACCOUNT, "bounds")


def make_client(base_url: str, **settings: Any) -> GraphApiClient:
    resource = MetaAdsResource(
        access_token=SANDBOX_TOKEN,
        base_url=base_url,
        api_version=API_VERSION,
        **{
            "backoff_base_seconds": 0.05,
            "backoff_max_seconds": 0.2,
            "report_poll_seconds": 0.05,
            "report_poll_max_seconds": 0.05,
            "request_timeout_seconds": 0.5,
            **settings,
        },
    )
    return resource.client(log=logging.getLogger("metrics_pipeline_tests.bounds"))


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying")]


def requests_to(sandbox: SandboxServer, route: str) -> list[dict]:
    return [r for r in sandbox.state.requests if r["route"] == route]


# -- 1. unreachable host -------------------------------------------------------------------
def test_an_unreachable_host_fails_within_the_connect_budget_naming_it(caplog):
    caplog.set_level(logging.INFO)
    client = make_client("http://127.0.0.1:9", connect_budget_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(MetaApiError) as failure:
        finish_within(10, lambda: client.account(ACCOUNT, SITE))
    elapsed = time.monotonic() - started
    reason = "cannot connect to http://127.0.0.1:9 (ConnectionRefusedError)"
    assert failure.value.kind is ErrorKind.UNREACHABLE
    assert reason in str(failure.value)
    assert 1.0 - 0.2 <= elapsed < 3.0  # the connect budget, not the request budget
    lines = retry_lines(caplog)
    assert lines and all(reason in line for line in lines)
    assert all(SANDBOX_TOKEN not in r.getMessage() for r in caplog.records)
    assert SANDBOX_TOKEN not in str(failure.value)
    assert is_configuration_error(failure.value)


def test_server_errors_keep_the_long_budget(fault_sandbox):
    # 5xx is the server's trouble, not a wrong host: the short connect budget must not apply.
    fault = fault_sandbox.inject("service_unavailable", count=4, route="account")
    client = make_client(fault_sandbox.url, connect_budget_seconds=0.0)
    body = finish_within(10, lambda: client.account(ACCOUNT, SITE))
    assert body["id"] == ACCOUNT
    assert fault.fired == 4
    assert len(requests_to(fault_sandbox, f"/{API_VERSION}/{ACCOUNT}")) == 5


def test_configuration_errors_are_found_through_the_exception_chain():
    def raised_from(inner: BaseException) -> BaseException:
        try:
            try:
                raise inner
            except BaseException as exc:
                raise RuntimeError("step failed") from exc
        except RuntimeError as outer:
            return outer

    for kind in (ErrorKind.AUTH, ErrorKind.PERMISSION, ErrorKind.INVALID, ErrorKind.UNREACHABLE):
        assert is_configuration_error(raised_from(MetaApiError(kind, "x"))), kind
    for kind in (ErrorKind.THROTTLED, ErrorKind.TRANSIENT, ErrorKind.REDUCE_DATA):
        assert not is_configuration_error(raised_from(MetaApiError(kind, "x"))), kind
    assert not is_configuration_error(ValueError("x"))


# -- 2. paging.next to another host --------------------------------------------------------
@pytest.fixture
def fault_sandbox(world) -> Iterator[SandboxServer]:
    with SandboxServer(world, now=NOW) as server:
        yield server


@pytest.fixture
def bystander() -> Iterator[tuple[str, list[str]]]:
    """A tiny HTTP server on another loopback port that records every request it gets."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            payload = b'{"data": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_paging_next_to_another_host_is_never_followed(fault_sandbox, bystander):
    foreign, seen = bystander
    fault = fault_sandbox.inject("foreign_next", route="objects", target=foreign)
    client = make_client(fault_sandbox.url, page_size=5, app_secret="sandbox-app-secret")
    with pytest.raises(MetaApiError) as failure:
        finish_within(10, lambda: client.objects(ACCOUNT, "ads", SITE))
    assert fault.fired == 1
    assert seen == []  # neither the token nor appsecret_proof went there
    assert failure.value.kind is ErrorKind.INVALID
    assert f"points at {foreign}, not the configured {fault_sandbox.url}" in str(failure.value)
    assert is_configuration_error(failure.value)


@pytest.mark.parametrize(
    ("status", "method", "route", "path"),
    [(302, "GET", "account", ACCOUNT), (307, "POST", "insights", f"{ACCOUNT}/insights")],
)
def test_a_redirect_to_another_host_is_an_error_naming_it(
    fault_sandbox, bystander, status, method, route, path
):
    foreign, seen = bystander
    fault = fault_sandbox.inject("redirect", route=route, target=foreign, status=status)
    client = make_client(fault_sandbox.url, app_secret="sandbox-app-secret")
    url = f"{fault_sandbox.url}/{API_VERSION}/{path}"
    with pytest.raises(MetaApiError) as failure:
        finish_within(10, lambda: client.request(method, url, {"fields": "name"}, SITE))
    assert fault.fired == 1
    assert seen == []  # nothing sent there, so nothing taken from there
    assert failure.value.kind is ErrorKind.INVALID  # a configuration error: never retried
    assert (
        f"{fault_sandbox.url} answered HTTP {status} redirecting to "
        f"{foreign}/{API_VERSION}/{path}, another origin: not followed"
    ) in str(failure.value)
    assert "appsecret_proof" not in str(failure.value)  # the Location's query is not named
    assert SANDBOX_TOKEN not in str(failure.value)
    assert is_configuration_error(failure.value)
    assert len(requests_to(fault_sandbox, f"/{API_VERSION}/{path}")) == 1


def test_a_redirect_on_the_same_host_is_refused_too(fault_sandbox):
    # Meta answers API calls itself; a redirect is a proxy or a wrong base URL.
    fault = fault_sandbox.inject("redirect", route="account", status=301)
    client = make_client(fault_sandbox.url)
    with pytest.raises(MetaApiError) as failure:
        finish_within(10, lambda: client.account(ACCOUNT, SITE))
    assert fault.fired == 1
    assert (
        f"{fault_sandbox.url} answered HTTP 301 redirecting to "
        f"{fault_sandbox.url}/{API_VERSION}/{ACCOUNT}: redirects are not followed"
    ) in str(failure.value)
    assert len(requests_to(fault_sandbox, f"/{API_VERSION}/{ACCOUNT}")) == 1


# -- 3. repeated cursors, oversized pages, page and byte caps ------------------------------
def test_a_repeated_page_is_refused(fault_sandbox):
    fault = fault_sandbox.inject("repeated_cursor", route="objects")
    client = make_client(fault_sandbox.url, page_size=5)
    with pytest.raises(MetaApiError, match=r"paging\.next repeats a page after page 1"):
        finish_within(10, lambda: client.objects(ACCOUNT, "ads", SITE))
    assert fault.fired == 1
    assert len(requests_to(fault_sandbox, f"/{API_VERSION}/{ACCOUNT}/ads")) == 1


def test_a_page_with_more_rows_than_asked_is_refused(fault_sandbox):
    fault = fault_sandbox.inject("oversized_page", route="objects")
    client = make_client(fault_sandbox.url, page_size=5)
    with pytest.raises(MetaApiError) as failure:
        finish_within(10, lambda: client.objects(ACCOUNT, "ads", SITE))
    assert fault.fired == 1
    assert failure.value.kind is ErrorKind.TRANSIENT
    assert f"from {fault_sandbox.url} " in str(failure.value)
    assert "a page of 10 rows for a limit of 5" in str(failure.value)


def test_pages_per_query_are_capped(fault_sandbox, world):
    assert len(world.account("1000000001").ads) > 15  # so three pages of five exist
    client = make_client(fault_sandbox.url, page_size=5, max_pages_per_query=3)
    with pytest.raises(MetaApiError, match="more than 3 pages"):
        finish_within(10, lambda: client.objects(ACCOUNT, "ads", SITE))
    assert len(requests_to(fault_sandbox, f"/{API_VERSION}/{ACCOUNT}/ads")) == 3


def test_a_body_over_the_byte_cap_is_not_read_to_the_end(fault_sandbox):
    cap, size = 1024 * 1024, 48 * 1024 * 1024
    fault = fault_sandbox.inject("huge_body", route="account", size_bytes=size)
    client = make_client(fault_sandbox.url, max_response_bytes=cap)
    with pytest.raises(MetaApiError) as failure:
        finish_within(10, lambda: client.account(ACCOUNT, SITE))
    assert failure.value.kind is ErrorKind.REDUCE_DATA  # never the same request again
    assert f"{fault_sandbox.url} sent a body over the {cap}-byte cap" in str(failure.value)
    deadline = time.monotonic() + 5
    while fault.sent_bytes == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the sandbox counts once its write fails
    # What loopback buffers hold beyond the cap, far from the whole body.
    assert 0 < fault.sent_bytes < 16 * 1024 * 1024


# -- 4. deadlines --------------------------------------------------------------------------
def test_a_trickling_body_hits_the_body_deadline_and_is_retried(fault_sandbox, caplog):
    caplog.set_level(logging.INFO)
    # 20 pieces 0.2 s apart: each read is in time (0.5 s), the whole body takes 4 s.
    fault = fault_sandbox.inject(
        "slow_body", route="account", pieces=20, delay_seconds=0.2, count=1
    )
    client = make_client(fault_sandbox.url, body_deadline_seconds=1.0)
    started = time.monotonic()
    body = finish_within(10, lambda: client.account(ACCOUNT, SITE))
    elapsed = time.monotonic() - started
    assert body["id"] == ACCOUNT
    assert fault.fired == 1
    assert 1.0 <= elapsed < 3.0
    (line,) = retry_lines(caplog)
    assert f"(attempt 1, transient): {fault_sandbox.url} did not send the whole body within 1s" in (
        line
    )


def test_a_report_that_creeps_forever_is_given_up_and_started_again(fault_sandbox, world):
    fault = fault_sandbox.inject("report_creeping", account="1000000001", count=1)
    # The stall detector alone would need 99 polls and then 60 s without progress.
    client = make_client(fault_sandbox.url, report_deadline_seconds=1.0, report_stall_seconds=60.0)
    until = NOW.date() - timedelta(days=2)
    since = until - timedelta(days=9)  # ten days: longer than sync_max_days, so a report
    started = time.monotonic()
    chunks = finish_within(
        20,
        lambda: list(client.insight_chunks(ACCOUNT, since, until, ("7d_click",), "harbor_view")),
    )
    assert time.monotonic() - started < 5
    assert fault.fired == 1
    posts = [r for r in requests_to(fault_sandbox, f"/{API_VERSION}/{ACCOUNT}/insights")]
    assert [r["method"] for r in posts] == ["POST", "POST"]  # retried once, not split
    today = local_today(world, ACCOUNT, NOW)
    expected = sum(day_truth(world, ACCOUNT, d, 0, today).rows for d in days_between(since, until))
    assert [(first, last) for first, last, _ in chunks] == [(since, until)]
    assert len(chunks[0][2]) == expected


# -- 5. "reduce the amount of data" on a report's result pages -----------------------------
def _collect(sandbox: SandboxServer, catalog, folder: Path, days: int, **meta_settings):
    url = f"sqlite:///{folder / 'warehouse.sqlite'}"
    defs = build_definitions(catalog, make_resources(sandbox.url, url, **meta_settings))
    start = NOW.date() - timedelta(days=days + 1)
    end = NOW.date() - timedelta(days=2)
    with make_instance(folder / "dagster_home") as instance:
        outcome = materialize_window(defs, catalog, instance, start, end)
    return outcome, WarehouseResource(url=url)


def _result_pages(sandbox: SandboxServer) -> int:
    """Requests for pages of report results (refused ones included)."""
    return sum(
        1
        for r in sandbox.state.requests
        if "/report_" in r["path"] and r["path"].endswith("/insights")
    )


def _table(warehouse: WarehouseResource, table: str) -> list[tuple]:
    frame = warehouse.read(table)
    kept = [c for c in frame.columns if not c.endswith("_at")]  # when, not what
    return sorted(tuple(str(v) for v in row) for row in frame[kept].itertuples(index=False))


def test_result_pages_shrink_instead_of_splitting_the_report(world, catalog, tmp_path):
    # The ideal: a clean run that asks for pages of 62 rows, the size the fault accepts.
    with SandboxServer(world, now=NOW) as clean:
        clean_outcome, clean_warehouse = _collect(
            clean, catalog, tmp_path / "clean", days=43, page_size=62
        )
        clean_requests = len(clean.state.requests)
        clean_pages = _result_pages(clean)
        clean_reports = len(clean.state.reports)
    assert clean_outcome.success, clean_outcome.errors

    with SandboxServer(world, now=NOW) as faulty:
        # Every result page above 100 rows refused; pages ask 500, so 250, 125, then 62.
        reduce = faulty.inject("reduce_data_pages", count=-1)
        faulty.inject("transient", count=1, route="report")
        faulty.inject("throttle_insights", count=1, route="insights", regain_minutes=0.01)
        # Splitting every job instead would take many minutes: a failure, not a wait.
        outcome, warehouse = finish_within(
            90, lambda: _collect(faulty, catalog, tmp_path / "faulty", days=43)
        )
        requests = len(faulty.state.requests)
        pages = _result_pages(faulty)
        reports = len(faulty.state.reports)
    assert outcome.success, outcome.errors

    assert clean_reports == 2 * len(catalog.clients)  # 31 + 12 days each
    assert reports == clean_reports  # no job was split
    assert reduce.fired == reports
    ratio = requests / clean_requests
    print(f"requests: ideal {clean_requests}, with faults {requests}, ratio {ratio:.2f}")
    # Result pages beyond the ideal: three halvings per account (not per page), and at most
    # the transient and the throttled call again (report polls follow timing, so not them).
    assert 3 * len(catalog.clients) <= pages - clean_pages <= 3 * len(catalog.clients) + 2
    for table in ("meta_insights", "daily_kpi_data"):
        assert _table(warehouse, table) == _table(clean_warehouse, table), table


# -- 6. a page size Meta asked to reduce stays reduced --------------------------------------
def test_a_reduced_page_size_holds_for_the_following_pages_and_queries(fault_sandbox, world):
    # Every result page above 60 rows is refused: pages of 200 halve twice to 50, once.
    fault = fault_sandbox.inject("reduce_data_pages", max_limit=60, count=-1)
    client = make_client(fault_sandbox.url, page_size=200, days_per_report=10, page_grow_after=1000)
    until = NOW.date() - timedelta(days=2)
    since = until - timedelta(days=19)  # two report jobs of ten days
    chunks = finish_within(
        20,
        lambda: list(client.insight_chunks(ACCOUNT, since, until, ("7d_click",), "harbor_view")),
    )
    today = local_today(world, ACCOUNT, NOW)
    expected_rows = [
        sum(day_truth(world, ACCOUNT, d, 0, today).rows for d in days_between(first, last))
        for first, last, _ in chunks
    ]
    assert [len(rows) for _, _, rows in chunks] == expected_rows
    assert len(chunks) == 2 and fault.fired == 2
    # Pages of 50 from the start, plus the two refused asks (200, 100) of the first page.
    ideal = sum(-(-rows // 50) for rows in expected_rows)
    assert _result_pages(fault_sandbox) == ideal + 2
