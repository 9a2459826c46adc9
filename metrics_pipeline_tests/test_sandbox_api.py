"""The sandbox behaves like the Graph API where ingestion code most often goes wrong."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import requests

from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
from metrics_pipeline.sandbox.faults import Fault, parse_fault
from metrics_pipeline.sandbox.server import SANDBOX_TOKEN

AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}


def _get(sandbox, path, **params):
    return requests.get(f"{sandbox.url}/v24.0/{path}", params=params, headers=AUTH, timeout=10)


def _insights(sandbox, day, **extra):
    params = {
        "level": "ad",
        "time_increment": 1,
        "breakdowns": json.dumps(["country"]),
        "time_range": json.dumps({"since": day.isoformat(), "until": day.isoformat()}),
        "fields": "ad_id,spend,impressions,actions",
        "limit": 500,
        **extra,
    }
    return _get(sandbox, "act_1000000001/insights", **params)


def test_metrics_are_strings_and_usage_headers_come_with_every_answer(sandbox, now):
    response = _insights(sandbox, now.date() - timedelta(days=3))
    row = response.json()["data"][0]
    assert isinstance(row["spend"], str) and isinstance(row["impressions"], str)
    for header in (
        "x-app-usage",
        "x-ad-account-usage",
        "x-business-use-case-usage",
        "x-fb-ads-insights-throttle",
    ):
        json.loads(response.headers[header])


def test_deleted_and_archived_ads_only_when_the_filter_names_them(sandbox, world, now):
    day = now.date() - timedelta(days=35)
    hidden = {
        ad.id
        for ad in world.account("1000000001").ads
        if ad.effective_status in ("DELETED", "ARCHIVED")
    }
    default_ids = {r["ad_id"] for r in _insights(sandbox, day).json()["data"]}
    every = json.dumps(
        [
            {
                "field": "ad.effective_status",
                "operator": "IN",
                "value": ["ACTIVE", "PAUSED", "CAMPAIGN_PAUSED", "DELETED", "ARCHIVED"],
            }
        ]
    )
    all_ids = {r["ad_id"] for r in _insights(sandbox, day, filtering=every).json()["data"]}
    assert not hidden & default_ids
    assert hidden & all_ids


def test_the_last_page_has_a_cursor_but_no_next(sandbox, now):
    response = _insights(sandbox, now.date() - timedelta(days=2), limit=5)
    pages = [response.json()]
    while "next" in pages[-1]["paging"]:
        pages.append(requests.get(pages[-1]["paging"]["next"], headers=AUTH, timeout=10).json())
    assert len(pages) > 1
    assert "after" in pages[-1]["paging"]["cursors"]
    assert all(SANDBOX_TOKEN not in p.get("paging", {}).get("next", "") for p in pages)


def test_a_bad_token_is_oauth_error_190(sandbox):
    response = requests.get(
        f"{sandbox.url}/v24.0/act_1000000001", headers={"Authorization": "Bearer wrong"}, timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 190


def test_older_than_37_months_is_refused(sandbox, now):
    response = _insights(sandbox, now.date() - timedelta(days=38 * 31))
    assert response.json()["error"]["code"] == 3018


def test_the_state_endpoint_answers_a_json_post(sandbox):
    changes = {"revision": 3, "faults": [{"kind": "transient", "count": 2, "route": "report"}]}
    response = requests.post(
        f"{sandbox.url}/__sandbox/state", json=changes, headers=AUTH, timeout=5
    )
    assert response.status_code == 200
    assert response.json()["revision"] == 3
    assert sandbox.state.revision == 3
    (fault,) = sandbox.state.faults.faults
    assert (fault.kind, fault.count, fault.route) == ("transient", 2, "report")


def test_the_state_endpoint_refuses_a_call_without_the_token_or_json(sandbox):
    """What any web page open in a browser can send to loopback without a CORS preflight
    (a `text/plain` POST, no Authorization header) changes nothing; neither does JSON
    without the token, nor the token with another type."""
    url = f"{sandbox.url}/__sandbox/state"
    changes = json.dumps({"revision": 7, "faults": [{"kind": "auth", "count": -1}]})
    plain = {"Content-Type": "text/plain"}
    as_json = {"Content-Type": "application/json"}
    wrong = {"Authorization": "Bearer not-the-token"}
    refusals = [
        (plain, 401),
        (as_json, 401),
        ({**wrong, **as_json}, 401),
        ({**AUTH, **plain}, 415),
        ({**AUTH, "Content-Type": "application/x-www-form-urlencoded"}, 415),
    ]
    for headers, status in refusals:
        response = requests.post(url, data=changes, headers=headers, timeout=5)
        assert response.status_code == status, headers
    assert requests.get(url, timeout=5).status_code == 401
    assert sandbox.state.revision == 0
    assert sandbox.state.faults.faults == []

    answered = requests.post(url, data=changes, headers={**AUTH, **as_json}, timeout=5)
    assert answered.status_code == 200
    assert (answered.json()["revision"], sandbox.state.revision) == (7, 7)


def test_the_request_log_holds_no_query_string(sandbox):
    """A Meta-style call may carry the token in its query string: the log keeps the path
    and the parameters' names only."""
    response = requests.get(
        f"{sandbox.url}/v24.0/act_1000000001",
        params={"fields": "name,currency", "access_token": SANDBOX_TOKEN},
        timeout=10,
    )
    assert response.status_code == 200
    (logged,) = sandbox.state.requests
    assert logged == {
        "method": "GET",
        "path": "/v24.0/act_1000000001",
        "route": "/v24.0/act_1000000001",
        "parameters": ["access_token", "fields"],
        "authorization": False,
    }
    state = requests.get(f"{sandbox.url}/__sandbox/state", headers=AUTH, timeout=5).json()
    assert state["requests"] == [logged]
    assert SANDBOX_TOKEN not in json.dumps(state)


def test_the_feed_faults_answer_only_the_feed(sandbox):
    """A feed fault leaves the Graph API alone, and a Graph API fault the feed."""
    feed_fault = sandbox.inject("feed_redirect", target="http://127.0.0.1:9")
    graph_fault = sandbox.inject("redirect", target="http://127.0.0.1:9")
    graph = requests.get(
        f"{sandbox.url}/v24.0/act_1000000001", headers=AUTH, allow_redirects=False, timeout=10
    )
    assert (graph.status_code, graph.headers["Location"]) == (
        302,
        "http://127.0.0.1:9/v24.0/act_1000000001",
    )
    answer = requests.get(sandbox.url + FEED_PATH, allow_redirects=False, timeout=10)
    assert (answer.status_code, answer.headers["Location"]) == (
        302,
        f"http://127.0.0.1:9{FEED_PATH}",
    )
    assert (feed_fault.fired, graph_fault.fired) == (1, 1)
    assert sandbox.state.feed_requests == [FEED_PATH]


def test_the_bounds_faults_parse_from_the_command_line():
    texts = {
        "foreign_next:target=http://127.0.0.1:9999,count=2": {
            "kind": "foreign_next",
            "target": "http://127.0.0.1:9999",
            "count": 2,
        },
        "repeated_cursor:route=objects": {"kind": "repeated_cursor", "route": "objects"},
        "oversized_page:count=-1": {"kind": "oversized_page", "count": -1},
        "slow_body:pieces=10,delay_seconds=0.5": {
            "kind": "slow_body",
            "pieces": 10,
            "delay_seconds": 0.5,
        },
        "huge_body:size_bytes=1000000": {"kind": "huge_body", "size_bytes": 1000000},
        "report_creeping:account=1000000001": {
            "kind": "report_creeping",
            "account": "1000000001",
        },
        "redirect:target=http://127.0.0.1:9999,status=307,route=account": {
            "kind": "redirect",
            "target": "http://127.0.0.1:9999",
            "status": 307,
            "route": "account",
        },
        "feed_gzip_bomb:size_bytes=4294967296": {
            "kind": "feed_gzip_bomb",
            "size_bytes": 4294967296,
        },
        "feed_redirect:target=http://127.0.0.1:9999": {
            "kind": "feed_redirect",
            "target": "http://127.0.0.1:9999",
        },
        "feed_slow_body:pieces=10,delay_seconds=0.5": {
            "kind": "feed_slow_body",
            "pieces": 10,
            "delay_seconds": 0.5,
        },
        "reduce_data_page:max_limit=50,count=-1": {
            "kind": "reduce_data_page",
            "max_limit": 50,
            "count": -1,
        },
    }
    for text, spec in texts.items():
        assert parse_fault(text) == spec, text
        assert Fault(**parse_fault(text)).kind == spec["kind"]


def test_a_held_answer_waits_until_the_faults_are_cleared(sandbox, now):
    hold = sandbox.inject("hold", count=-1, route="insights", delay_seconds=30)
    day = now.date() - timedelta(days=3)
    with ThreadPoolExecutor(2) as pool:
        answers = [pool.submit(_insights, sandbox, day) for _ in range(2)]
        deadline = time.monotonic() + 10
        while hold.held < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (hold.held, [a.done() for a in answers]) == (2, [False, False])
        cleared = time.monotonic()
        sandbox.clear_faults()
        assert [a.result(timeout=10).status_code for a in answers] == [200, 200]
    assert time.monotonic() - cleared < 5  # let go by the clearing, not by its 30 s
    assert hold.held == 0
