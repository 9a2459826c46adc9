"""The fake Graph API on its own: requests in, responses out, no sockets.

Expected values come from the world (its accounts, ads and ground truth) and from a few
lines of the test's own, never from the fake's modules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from metrics_pipeline.sandbox.graph import FakeGraphApi, FakeResponse
from metrics_pipeline.sandbox.ground_truth import day_truth
from metrics_pipeline.sandbox.world import World

ACCOUNT = "1000000001"
TOKEN = "fake-test-token"  # the fake accepts whatever it is given
AUTH = {"Authorization": f"Bearer {TOKEN}", "Host": "graph.test:8080"}


class SteppedClock:
    """The fake's monotonic seconds, moved by hand."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
def api(world, now, clock) -> FakeGraphApi:
    return FakeGraphApi(world, access_token=TOKEN, now=now, monotonic=clock)


def local_today(now):
    return now.astimezone(ZoneInfo("Pacific/Auckland")).date()  # account 1000000001's zone


def get(api: FakeGraphApi, path: str, headers=AUTH, **query) -> FakeResponse:
    return api.handle(
        "GET", f"/v24.0/{path}", query={k: str(v) for k, v in query.items()}, headers=headers
    )


def every_status_filter(world) -> str:
    statuses = sorted({ad.effective_status for ad in world.account(ACCOUNT).ads})
    return json.dumps([{"field": "ad.effective_status", "operator": "IN", "value": statuses}])


def test_the_account_route_answers_from_the_world(api, world):
    response = get(api, f"act_{ACCOUNT}", fields="name,currency,timezone_name")
    spec = world.account(ACCOUNT).spec
    assert response.status == 200
    assert response.json() == {
        "id": f"act_{ACCOUNT}",
        "account_id": ACCOUNT,
        "name": spec.name,
        "currency": spec.currency,
        "timezone_name": spec.timezone,
        "account_status": 1,
    }
    assert response.headers["Content-Type"].startswith("application/json")
    assert json.loads(response.headers["x-app-usage"])["call_count"] == 0


def test_an_unknown_path_is_error_803_and_an_unknown_account_error_100(api):
    unknown = get(api, f"act_{ACCOUNT}/exchange_rates")
    assert (unknown.status, unknown.json()["error"]["code"]) == (400, 803)
    missing = get(api, "act_999/campaigns")
    error = missing.json()["error"]
    assert (missing.status, error["code"], error["error_subcode"]) == (400, 100, 33)


def test_get_insights_answers_the_rows_where_post_would_start_a_job(api, world, now):
    day = local_today(now) - timedelta(days=3)
    answer = get(
        api,
        f"act_{ACCOUNT}/insights",
        level="ad",
        time_range=json.dumps({"since": day.isoformat(), "until": day.isoformat()}),
        fields="ad_id,spend",
        filtering=every_status_filter(world),
        limit=5000,
    ).json()
    truth = day_truth(world, ACCOUNT, day, 0, local_today(now))
    assert "report_run_id" not in answer
    assert len(answer["data"]) == truth.rows
    assert sum(Decimal(r["spend"]) for r in answer["data"]) == truth.spend
    assert not api.state.reports


def test_the_request_log_keeps_the_path_and_whether_a_header_carried_the_token(api):
    get(api, f"act_{ACCOUNT}", fields="name")
    api.handle("GET", f"/v24.0/act_{ACCOUNT}?access_token={TOKEN}&fields=name")
    assert [
        (r["method"], r["path"], r["parameters"], r["authorization"]) for r in api.state.requests
    ] == [
        ("GET", f"/v24.0/act_{ACCOUNT}", ["fields"], True),
        ("GET", f"/v24.0/act_{ACCOUNT}", ["access_token", "fields"], False),
    ]
    # The token that travelled in the query string is nowhere in the log.
    assert TOKEN not in json.dumps(api.state.requests)


def test_a_missing_or_wrong_token_is_refused(api):
    missing = get(api, f"act_{ACCOUNT}", headers={})
    assert (missing.status, missing.json()["error"]["code"]) == (400, 2500)
    wrong = get(api, f"act_{ACCOUNT}", headers={"Authorization": "Bearer not-the-token"})
    error = wrong.json()["error"]
    assert (wrong.status, error["code"], error["error_subcode"]) == (400, 190, 463)
    as_parameter = get(api, f"act_{ACCOUNT}", headers={}, access_token=TOKEN)
    assert as_parameter.status == 200


def test_with_an_app_secret_the_proof_is_required(world, now):
    secret = "fake-test-app-secret"
    api = FakeGraphApi(world, access_token=TOKEN, app_secret=secret, now=now)
    without = get(api, f"act_{ACCOUNT}")
    assert (without.status, without.json()["error"]["code"]) == (400, 100)
    proof = hmac.new(secret.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    assert get(api, f"act_{ACCOUNT}", appsecret_proof=proof).status == 200


def test_paging_through_ads_returns_each_visible_ad_once(api, world):
    visible = [
        ad.id
        for ad in world.account(ACCOUNT).ads
        if ad.effective_status not in ("DELETED", "ARCHIVED")
    ]
    assert len(visible) > 3
    pages = [get(api, f"act_{ACCOUNT}/ads", fields="id,name", limit=3).json()]
    while "next" in pages[-1]["paging"]:
        link = urlsplit(pages[-1]["paging"]["next"])
        assert link.netloc == "graph.test:8080"  # the next page on the host that was asked
        query = {k: v[0] for k, v in parse_qs(link.query).items()}
        assert "access_token" not in query
        pages.append(api.handle("GET", link.path, query=query, headers=AUTH).json())
    assert [len(p["data"]) for p in pages] == [3] * (len(visible) // 3) + (
        [len(visible) % 3] if len(visible) % 3 else []
    )
    assert [row["id"] for p in pages for row in p["data"]] == visible
    last_after = base64.urlsafe_b64decode(pages[-1]["paging"]["cursors"]["after"]).decode()
    assert last_after == f"offset:{len(visible)}"


def test_a_report_job_starts_runs_completes_and_pages_the_days_truth(api, world, now, clock):
    day = local_today(now) - timedelta(days=10)
    query = {
        "level": "ad",
        "time_increment": "1",
        "time_range": json.dumps({"since": day.isoformat(), "until": day.isoformat()}),
        "fields": "ad_id,spend,impressions,clicks",
        "filtering": every_status_filter(world),
    }
    started = api.handle("POST", f"/v24.0/act_{ACCOUNT}/insights", query=query, headers=AUTH)
    report_id = started.json()["report_run_id"]
    assert report_id == f"report_1_{ACCOUNT}"

    def poll() -> tuple[str, int]:
        answer = get(api, report_id).json()
        return answer["async_status"], answer["async_percent_completion"]

    assert poll() == ("Job Started", 0)
    clock.seconds += 0.0625  # binary fractions of a second: exact sums
    assert poll() == ("Job Started", 6)
    clock.seconds += 0.4375
    assert poll() == ("Job Running", 50)
    clock.seconds += 0.5  # the job's whole second has passed
    assert poll() == ("Job Completed", 100)

    rows = []
    page = get(api, f"{report_id}/insights", limit=7).json()
    rows += page["data"]
    while "next" in page["paging"]:
        after = parse_qs(urlsplit(page["paging"]["next"]).query)["after"][0]
        page = get(api, f"{report_id}/insights", limit=7, after=after).json()
        rows += page["data"]
    truth = day_truth(world, ACCOUNT, day, 0, local_today(now))
    assert len(rows) == truth.rows
    assert sum(Decimal(r["spend"]) for r in rows) == truth.spend
    assert sum(int(r["impressions"]) for r in rows) == truth.impressions
    assert sum(int(r["clicks"]) for r in rows) == truth.clicks
    assert {r["date_start"] for r in rows} == {day.isoformat()}


def test_a_throttling_fault_answers_once_with_its_regain_time_then_the_route_answers(api, world):
    fault = api.inject("throttle_insights", count=1, route="objects", regain_minutes=2.5)
    account_call = get(api, f"act_{ACCOUNT}")  # another route kind: not throttled
    throttled = get(api, f"act_{ACCOUNT}/campaigns")
    again = get(api, f"act_{ACCOUNT}/campaigns")
    assert account_call.status == 200
    error = throttled.json()["error"]
    assert (throttled.status, error["code"], error["error_subcode"]) == (400, 80004, 2446079)
    business = world.account(ACCOUNT).spec.business_id
    usage = json.loads(throttled.headers["x-business-use-case-usage"])[business][0]
    assert (usage["call_count"], usage["estimated_time_to_regain_access"]) == (100, 2.5)
    assert json.loads(throttled.headers["x-ad-account-usage"])["reset_time_duration"] == 150.0
    assert fault.fired == 1
    assert again.status == 200


def test_transport_faults_are_described_on_the_response(api):
    api.inject("drop", count=1, route="account")
    dropped = get(api, f"act_{ACCOUNT}")
    whole = get(api, f"act_{ACCOUNT}")
    assert dropped.body == whole.body  # the full length is announced ...
    assert dropped.cut_at == len(whole.body) // 2  # ... and half of it sent

    api.inject("slow_body", count=1, route="account", pieces=4, delay_seconds=0.25)
    slow = get(api, f"act_{ACCOUNT}")
    assert (slow.pieces, slow.piece_delay, slow.body) == (4, 0.25, whole.body)

    api.inject("http_502", count=1)
    gateway = get(api, f"act_{ACCOUNT}")
    assert (gateway.status, gateway.headers["Content-Type"]) == (502, "text/html")


def test_a_huge_body_counts_only_what_the_peer_took(api):
    fault = api.inject("huge_body", count=1, route="account", size_bytes=10 * 65536)
    response = get(api, f"act_{ACCOUNT}")
    assert response.stream is not None and response.body == b""
    head, first, second = next(response.stream), next(response.stream), next(response.stream)
    response.stream.close()  # the peer hung up while the second block was on its way
    assert head == b'{"data": [], "padding": "'
    assert first == second == b"x" * 65536
    assert fault.sent_bytes == 65536


def test_the_control_endpoint_takes_the_token_and_json_and_is_not_logged(api, now):
    get(api, f"act_{ACCOUNT}")
    moved = (now + timedelta(days=1)).isoformat()
    changes = json.dumps({"revision": 2, "now": moved, "faults": [{"kind": "transient"}]})
    as_json = {**AUTH, "Content-Type": "application/json"}
    answer = api.handle("POST", "/__sandbox/state", headers=as_json, body=changes.encode()).json()
    assert (answer["revision"], answer["now"]) == (2, moved)
    assert [r["route"] for r in answer["requests"]] == [f"/v24.0/act_{ACCOUNT}"]
    (fault,) = api.state.faults.faults
    assert (fault.kind, fault.count) == ("transient", 1)
    read = api.handle("GET", "/__sandbox/state", headers=AUTH).json()
    assert read["requests"] == answer["requests"]
    assert api.handle("GET", "/__sandbox/state").status == 401


def test_the_control_endpoint_plants_broken_tracking_and_a_spend_spike(now):
    fresh, planted = World(anchor=now.date()), World(anchor=now.date())
    api = FakeGraphApi(planted, access_token=TOKEN, now=now)
    broken, spiked = now.date() - timedelta(days=3), now.date() - timedelta(days=5)
    changes = {
        "plants": [
            {"kind": "tracking_break", "account": "act_1000000002", "first": str(broken)},
            {"kind": "spend_spike", "account": "1000000003", "day": str(spiked), "factor": 10},
        ]
    }
    as_json = {**AUTH, "Content-Type": "application/json"}
    body = json.dumps(changes).encode()
    assert api.handle("POST", "/__sandbox/state", headers=as_json, body=body).status == 200
    today = now.date()
    before, after = (day_truth(w, "act_1000000002", broken, 0, today) for w in (fresh, planted))
    assert before.reservations > 0 and after.reservations == 0
    assert after.reservation_value == 0 and after.booking_step_1 == 0
    assert (after.spend, after.click_to_call) == (before.spend, before.click_to_call)
    before, after = (day_truth(w, "act_1000000003", spiked, 0, today) for w in (fresh, planted))
    assert after.spend == before.spend * 10 and after.reservations == before.reservations
    wrong = json.dumps({"plants": [{"kind": "outage", "account": "1000000001"}]}).encode()
    refused = api.handle("POST", "/__sandbox/state", headers=as_json, body=wrong)
    assert refused.status == 400 and "unknown plant kind 'outage'" in refused.json()["error"]


def test_a_duplicate_rows_fault_repeats_each_row_of_its_day_only(api, world, now):
    day = local_today(now) - timedelta(days=4)
    api.inject("duplicate_rows", account=ACCOUNT, day=day.isoformat(), count=-1)
    since = day - timedelta(days=1)
    rows = get(
        api,
        f"act_{ACCOUNT}/insights",
        level="ad",
        time_range=json.dumps({"since": since.isoformat(), "until": day.isoformat()}),
        fields="ad_id,impressions",
        filtering=every_status_filter(world),
        limit=5000,
    ).json()["data"]
    today = local_today(now)
    clean, faulty = (
        day_truth(world, ACCOUNT, since, 0, today),
        day_truth(world, ACCOUNT, day, 0, today),
    )
    by_day = {d: [r for r in rows if r["date_start"] == d.isoformat()] for d in (since, day)}
    assert len(by_day[since]) == clean.rows
    assert len(by_day[day]) == 2 * faulty.rows
    assert sum(int(r["impressions"]) for r in by_day[day]) == 2 * faulty.impressions
