"""The sandbox Graph API server: real HTTP on loopback, shaped like Meta's responses.

Endpoints (under `/{version}`): the ad account, its campaigns / adsets / ads, synchronous
insights (GET) and async insight reports (POST, then poll the report run); and, at
`ecb_rates.FEED_PATH`, the euro reference rates in the ECB's format. A control
endpoint, `/__sandbox/state`, lets tests move the clock, re-attribute conversions and remove
delivery already reported; the pipeline never calls it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from metrics_pipeline.sandbox.ecb_rates import FEED_PATH, EcbRates
from metrics_pipeline.sandbox.faults import (
    ERROR_FAULTS,
    REPORT_FAULTS,
    TRANSPORT_FAULTS,
    Fault,
    FaultPlan,
)
from metrics_pipeline.sandbox.render import actions_of, format_minor, format_time
from metrics_pipeline.sandbox.world import AdObject, World

REACH_MONTHS = 13
# What a failed async report run carries since v25.0 (error_code is a signed int).
REPORT_FAILURE = {
    "error_code": -2,
    "error_message": "The report could not be generated",
    "error_subcode": 1487534,
    "error_user_title": "Report too large",
    "error_user_msg": "Ask for fewer days or fewer breakdowns and try again.",
}


def months_before(day: date, months: int) -> date:
    """The same day `months` calendar months earlier (the month's last day when shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    for last in (31, 30, 29, 28):
        try:
            return date(year, month + 1, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


# The attribution windows Meta still returns (7d_view and 28d_view stopped on 2026-01-12).
SERVED_WINDOWS = ("1d_click", "7d_click", "28d_click", "1d_view", "1d_ev")

SANDBOX_TOKEN = "sandbox-access-token"  # noqa: S105 - the sandbox's own, not a credential
MAX_HISTORY_MONTHS = 37
ALL_STATUSES = {
    "ACTIVE",
    "PAUSED",
    "DELETED",
    "ARCHIVED",
    "CAMPAIGN_PAUSED",
    "ADSET_PAUSED",
    "PENDING_REVIEW",
    "DISAPPROVED",
    "PREAPPROVED",
    "PENDING_BILLING_INFO",
    "IN_PROCESS",
    "WITH_ISSUES",
}
HIDDEN_BY_DEFAULT = {"DELETED", "ARCHIVED"}
DEFAULT_LIMIT = 25
MAX_LIMIT = 5000


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        subcode: int | None = None,
        error_type: str = "OAuthException",
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {
            "error": {
                "message": message,
                "type": error_type,
                "code": code,
                "is_transient": transient,
                "fbtrace_id": "AsandboxTrace",
                **({"error_subcode": subcode} if subcode is not None else {}),
            }
        }


@dataclass
class SandboxState:
    world: World
    access_token: str = SANDBOX_TOKEN
    app_secret: str | None = None
    revision: int = 0  # how many rounds of late attribution have happened
    now: datetime | None = None  # None: the real clock
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    usage_window_seconds: float = 300.0
    usage_call_limit: int = 5000
    faults: FaultPlan = field(default_factory=FaultPlan)
    # account digits -> (calls allowed, per window seconds): a tight, enforced limit.
    rate_limits: dict[str, tuple[int, float]] = field(default_factory=dict)
    throttled: int = 0  # throttling errors the sandbox has returned
    report_seconds: float = 1.0  # how long a report job takes to compute
    ecb: EcbRates = field(default_factory=EcbRates)  # the euro reference rates feed

    def clock(self) -> datetime:
        return self.now or datetime.now(UTC)


def _json_param(query: dict[str, list[str]], name: str, default: Any) -> Any:
    if name not in query:
        return default
    raw = query[name][0]
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise ApiError(400, 100, f"(#100) param {name} must be JSON-encoded, got {raw!r}") from None


def _route_kind(path: str) -> str:
    if re.search(r"/report_\w+", path):
        return "report"
    if path.endswith("/insights"):
        return "insights"
    if re.search(r"/(campaigns|adsets|ads)$", path):
        return "objects"
    return "account"


def _days_spanned(query: dict[str, list[str]]) -> int:
    try:
        time_range = json.loads(query["time_range"][0])
        since = date.fromisoformat(time_range["since"])
        until = date.fromisoformat(time_range["until"])
    except (KeyError, ValueError, TypeError, IndexError):
        return 0
    return (until - since).days + 1


def _fault_error(kind: str) -> ApiError:
    status, code, subcode, transient, message = ERROR_FAULTS[kind]
    return ApiError(status, code, message, subcode=subcode, transient=transient)


def _corrupt(kind: str, events, exponent: int) -> dict[str, str]:
    """Metrics of a row corrupted by a data fault (they still parse)."""
    if kind == "clicks_over_impressions":
        return {"clicks": str(events.impressions + 10)}
    if kind == "zero_spend":
        return {"spend": format_minor(0, exponent)}
    if kind == "empty_spend":
        return {"spend": ""}
    if kind == "nan_impressions":
        return {"impressions": "NaN"}
    if kind == "negative_spend":
        return {"spend": "-" + format_minor(events.spend_minor, exponent)}
    if kind == "huge_spend":
        return {"spend": format_minor(events.spend_minor * 1000, exponent)}
    return {}


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode().split(":")[1])
    except (ValueError, IndexError):
        raise ApiError(400, 100, "(#100) Invalid cursor") from None


class SandboxHandler(BaseHTTPRequestHandler):
    server_version = "sandbox-graph/1.0"
    protocol_version = "HTTP/1.1"
    state: SandboxState  # set on the subclass made per server
    _scope: tuple[str, str | None] = ("any", None)  # this request's route kind and account

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        return

    # -- plumbing -------------------------------------------------------------------------
    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _query(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        if self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            for key, values in parse_qs(body, keep_blank_values=True).items():
                query.setdefault(key, values)
        return parts.path, query

    def _authenticate(self, query: dict[str, list[str]]) -> None:
        state = self.state
        header = self.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        token = token or (query.get("access_token") or [None])[0]
        if not token:
            raise ApiError(
                400,
                2500,
                "An active access token must be used to query information about the current user.",
            )
        if not hmac.compare_digest(token, state.access_token):
            raise ApiError(
                400, 190, "Invalid OAuth access token - Cannot parse access token", subcode=463
            )
        if state.app_secret:
            expected = hmac.new(
                state.app_secret.encode(), token.encode(), hashlib.sha256
            ).hexdigest()
            proof = (query.get("appsecret_proof") or [""])[0]
            if not hmac.compare_digest(proof, expected):
                raise ApiError(
                    400,
                    100,
                    "Invalid appsecret_proof provided in the API argument",
                    error_type="GraphMethodException",
                )

    def _count_call(self, account_id: str | None) -> tuple[float, float]:
        """Count this call; (usage percent, seconds until the oldest call leaves the window)."""
        state = self.state
        now = time.monotonic()
        key = account_id or "_app"
        limit, window = state.rate_limits.get(
            key, (state.usage_call_limit, state.usage_window_seconds)
        )
        with state.lock:
            calls = state.calls[key]
            calls.append(now)
            while calls and calls[0] < now - window:
                calls.popleft()
            pct = round(100.0 * len(calls) / limit, 2)
            reset = max(0.0, calls[0] + window - now) if calls else 0.0
        return pct, reset

    def _usage_headers(
        self, account_id: str | None, pct: float, reset: float, regain_minutes: float = 0.0
    ) -> dict[str, str]:
        shown = min(100.0, pct)
        headers = {
            "x-app-usage": json.dumps(
                {"call_count": int(shown), "total_time": int(shown), "total_cputime": int(shown)}
            ),
        }
        if account_id:
            business = self.state.world.account(account_id).spec.business_id
            headers["x-ad-account-usage"] = json.dumps(
                {
                    "acc_id_util_pct": shown,
                    "reset_time_duration": round(reset, 2),
                    "ads_api_access_tier": "standard_access",
                }
            )
            headers["x-business-use-case-usage"] = json.dumps(
                {
                    business: [
                        {
                            "type": "ads_insights",
                            "call_count": int(shown),
                            "total_cputime": int(shown),
                            "total_time": int(shown),
                            "estimated_time_to_regain_access": regain_minutes,
                        }
                    ]
                }
            )
            headers["x-fb-ads-insights-throttle"] = json.dumps(
                {
                    "app_id_util_pct": shown,
                    "acc_id_util_pct": shown,
                    "ads_api_access_tier": "standard_access",
                }
            )
        return headers

    def _record(self, path: str) -> None:
        with self.state.lock:
            self.state.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "route": path,
                    "authorization": "Authorization" in self.headers,
                }
            )

    # -- dispatch -------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        control = urlsplit(self.path).path
        if control.startswith("/__sandbox/"):
            return self._control(control)  # it reads its own (JSON) body
        if control == FEED_PATH:  # public, like the ECB's: no token
            return self._send_raw(200, self.state.ecb.feed(self.state.clock()), "text/xml")
        path, query = self._query()
        self._record(path)
        account_id: str | None = None
        match = re.match(r"^/v\d+\.\d+/act_(\d+)", path)
        if match and match.group(1) in self.state.world.accounts:
            account_id = match.group(1)
        if m := re.match(r"^/v\d+\.\d+/report_\d+_(\d+)", path):
            account_id = m.group(1) if m.group(1) in self.state.world.accounts else None
        route = _route_kind(path)
        self._scope = (route, account_id)
        pct, reset = self._count_call(account_id)
        fault = self.state.faults.take(
            route, account_id, _days_spanned(query), set(ERROR_FAULTS) | TRANSPORT_FAULTS
        )
        if fault is not None and fault.kind in TRANSPORT_FAULTS:
            if fault.kind == "http_502":
                return self._send_raw(
                    502, b"<html><body>502 Bad Gateway</body></html>", "text/html"
                )
            if fault.kind == "slow":
                time.sleep(fault.delay_seconds)
        try:
            if fault is not None and fault.kind in ERROR_FAULTS:
                raise _fault_error(fault.kind)
            limit = self.state.rate_limits.get(account_id or "")
            if limit and pct > 100.0:
                with self.state.lock:
                    self.state.throttled += 1
                raise _fault_error("throttle_insights")
            self._authenticate(query)
            status, body = self._route(path, query)
            headers = self._usage_headers(account_id, pct, reset)
            if fault is not None and fault.kind in ("drop", "truncate"):
                return self._send_broken(status, body, headers, fault.kind)
            if fault is not None and fault.kind == "slow_body":
                return self._send_slowly(status, body, headers, fault)
            if fault is not None and fault.kind == "huge_body":
                return self._send_huge(fault)
            self._send(status, body, headers)
        except ApiError as error:
            throttled = error.body["error"]["code"] in (4, 17, 32, 613, 80004)
            regain = 0.0
            if throttled:
                # An injected fault says how long to stay away; the enforced limit says when
                # the oldest call leaves its window.
                regain = fault.regain_minutes if fault is not None else reset / 60
                reset = regain * 60
            self._send(
                error.status,
                error.body,
                self._usage_headers(account_id, 100.0 if throttled else pct, reset, regain),
            )

    def _send_raw(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send_broken(self, status: int, body: dict, headers: dict[str, str], kind: str) -> None:
        """A body cut short: by dropping the connection, or as complete-looking bad JSON."""
        payload = json.dumps(body).encode()
        cut = payload[: max(1, len(payload) // 2)]
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload) if kind == "drop" else len(cut)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(cut)
        self.wfile.flush()
        if kind == "drop":
            self.close_connection = True
            self.connection.shutdown(2)

    def _send_slowly(self, status: int, body: dict, headers: dict[str, str], fault: Fault) -> None:
        """A complete body that trickles in: each piece in time, the whole far too late."""
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        step = max(1, -(-len(payload) // max(1, fault.pieces)))
        try:
            for start in range(0, len(payload), step):
                self.wfile.write(payload[start : start + step])
                self.wfile.flush()
                time.sleep(fault.delay_seconds)
        except OSError:  # the client gave up on it
            self.close_connection = True

    def _send_huge(self, fault: Fault) -> None:
        """A valid JSON body of `size_bytes` without Content-Length, counting what the
        client accepted before it hung up."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        head, tail = b'{"data": [], "padding": "', b'"}'
        block = b"x" * 65536
        sent = 0
        try:
            self.wfile.write(head)
            while sent < fault.size_bytes:
                self.wfile.write(block)
                sent += len(block)
            self.wfile.write(tail)
            self.wfile.flush()
        except OSError:
            pass
        with self.state.lock:
            fault.sent_bytes += sent

    def _route(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        if m := re.fullmatch(r"/v\d+\.\d+/act_(\d+)", path):
            return 200, self._account(m.group(1), query)
        if m := re.fullmatch(r"/v\d+\.\d+/act_(\d+)/(campaigns|adsets|ads)", path):
            return 200, self._objects(m.group(1), m.group(2), query)
        if m := re.fullmatch(r"/v\d+\.\d+/act_(\d+)/insights", path):
            if self.command == "POST":
                return 200, self._start_report(m.group(1), query)
            return 200, self._page(self._insights(m.group(1), query), query)
        if m := re.fullmatch(r"/v\d+\.\d+/(report_\w+)", path):
            return 200, self._report_status(m.group(1))
        if m := re.fullmatch(r"/v\d+\.\d+/(report_\w+)/insights", path):
            report = self._report(m.group(1))
            if not query.get("after"):
                self._refuse_big_first_page(report, query)
            with self.state.lock:
                rows = report.get("rows")
            if rows is None:
                # Like Meta, a finished report is a fixed result: computed once, then paged.
                rows = self._insights(report["account_id"], report["query"])
                with self.state.lock:
                    rows = report.setdefault("rows", rows)
            page = self._page(rows, query)
            if "next" not in page.get("paging", {}):
                with self.state.lock:
                    report.pop("rows", None)  # read to the end: free it (re-reading recomputes)
            return 200, page
        raise ApiError(400, 803, f"Unsupported request path {path}")

    def _refuse_big_first_page(self, report: dict[str, Any], query: dict[str, list[str]]) -> None:
        """reduce_data_page: the fault is taken when a report's results are first asked
        for; that report's first page is then refused while `limit` exceeds `max_limit`."""
        if "page_cap" not in report:
            fault = self.state.faults.take(
                "report", report["account_id"], kinds={"reduce_data_page"}
            )
            report["page_cap"] = fault.max_limit if fault else None
        if report["page_cap"] is not None and self._limit(query) > report["page_cap"]:
            raise _fault_error("reduce_data")

    # -- control --------------------------------------------------------------------------
    def _control(self, path: str) -> None:
        state = self.state
        if self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            changes = json.loads(self.rfile.read(length) or b"{}")
            with state.lock:
                if "revision" in changes:
                    state.revision = int(changes["revision"])
                if "now" in changes:
                    state.now = datetime.fromisoformat(changes["now"]) if changes["now"] else None
                if changes.get("clear_requests"):
                    state.requests.clear()
                for account, (calls, window) in (changes.get("rate_limits") or {}).items():
                    state.rate_limits[account] = (int(calls), float(window))
                for removal in changes.get("remove_delivery") or []:
                    state.world.remove_delivery(
                        str(removal["account"]),
                        date.fromisoformat(removal["day"]),
                        removal.get("ad_id"),
                    )
            if changes.get("clear_faults"):
                state.faults.clear()
            for spec in changes.get("faults") or []:
                state.faults.add(**spec)
        with state.lock:
            body = {
                "revision": state.revision,
                "now": state.clock().isoformat(),
                "requests": list(state.requests),
            }
        self._send(200, body)

    # -- resources ------------------------------------------------------------------------
    def _known_account(self, account_id: str):
        if account_id not in self.state.world.accounts:
            raise ApiError(
                400,
                100,
                f"(#100) Ad account act_{account_id} does not exist or "
                "you do not have permission to access it",
                subcode=33,
                error_type="GraphMethodException",
            )
        return self.state.world.account(account_id)

    def _account(self, account_id: str, query: dict[str, list[str]]) -> dict:
        account = self._known_account(account_id)
        spec = account.spec
        return {
            "id": f"act_{spec.account_id}",
            "account_id": spec.account_id,
            "name": spec.name,
            "currency": "XYZ"
            if "unknown_currency" in self.state.faults.data_faults(spec.account_id, None)
            else spec.currency,
            "timezone_name": spec.timezone,
            "account_status": 1,
        }

    def _status_filter(self, query: dict[str, list[str]], level: str) -> set[str]:
        statuses = set(ALL_STATUSES - HIDDEN_BY_DEFAULT)
        for rule in _json_param(query, "filtering", []):
            if rule.get("field") == f"{level}.effective_status" and rule.get("operator") == "IN":
                statuses = set(rule.get("value") or [])
        return statuses

    def _objects(self, account_id: str, edge: str, query: dict[str, list[str]]) -> dict:
        account = self._known_account(account_id)
        level = edge.rstrip("s")
        objects = {"campaigns": account.campaigns, "adsets": account.adsets, "ads": account.ads}[
            edge
        ]
        statuses = self._status_filter(query, level)
        fields = (query.get("fields") or ["id,name"])[0].split(",")
        rows = [self._object_fields(o, fields) for o in objects if o.effective_status in statuses]
        return self._page(rows, query)

    def _object_fields(self, obj: AdObject, fields: list[str]) -> dict:
        values: dict[str, Any] = {
            "id": obj.id,
            "name": obj.name,
            "status": obj.status,
            "configured_status": obj.status,
            "effective_status": obj.effective_status,
            "objective": obj.objective,
            "campaign_id": obj.campaign_id,
            "created_time": format_time(obj.created_time),
            "updated_time": format_time(obj.updated_time),
        }
        if obj.adset_id:
            values["adset_id"] = obj.adset_id
        if obj.daily_budget is not None:
            values["daily_budget"] = str(obj.daily_budget)
        if obj.lifetime_budget is not None:
            values["lifetime_budget"] = str(obj.lifetime_budget)
        return {k: v for k, v in values.items() if k in fields or k == "id"}

    def _insights(self, account_id: str, query: dict[str, list[str]]) -> list[dict]:
        account = self._known_account(account_id)
        level = (query.get("level") or ["account"])[0]
        if level != "ad":
            raise ApiError(400, 100, "(#100) The sandbox serves level=ad insights only")
        time_range = _json_param(query, "time_range", None)
        if not time_range:
            raise ApiError(400, 100, "(#100) time_range is required by the sandbox")
        try:
            since = date.fromisoformat(time_range["since"])
            until = date.fromisoformat(time_range["until"])
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, 100, f"(#100) Invalid time_range {time_range!r}") from None
        today = self.state.world.local_today(account_id, self.state.clock())
        oldest = today - timedelta(days=MAX_HISTORY_MONTHS * 31)
        if since < oldest:
            raise ApiError(
                400,
                3018,
                "The start date of the time range cannot be beyond 37 months from the current date",
                error_type="OAuthException",
            )
        breakdowns = _json_param(query, "breakdowns", [])
        # Like Meta since 2026-01-12: a retired or unknown window is left out, not refused.
        windows = [
            w for w in _json_param(query, "action_attribution_windows", []) if w in SERVED_WINDOWS
        ]
        fields = set((query.get("fields") or [""])[0].split(","))
        statuses = self._status_filter(query, "ad")
        wanted: dict[str, set[str]] = {}
        for rule in _json_param(query, "filtering", []):
            if rule.get("field") in ("campaign.id", "adset.id") and rule.get("operator") == "IN":
                wanted[rule["field"]] = {str(v) for v in rule.get("value") or []}
        self._day_faults = self.state.faults.data_faults_by_day(account_id)
        # Like Meta since 2025-06-10: no reach for breakdowns starting over 13 months back.
        no_reach = bool(breakdowns) and since < months_before(today, REACH_MONTHS)
        rows: list[dict] = []
        day = since
        while day <= until:
            for ad in account.ads:
                if ad.effective_status not in statuses:
                    continue
                if ad.campaign_id not in wanted.get("campaign.id", {ad.campaign_id}):
                    continue
                if ad.adset_id not in wanted.get("adset.id", {ad.adset_id}):
                    continue
                for country in account.spec.countries:
                    events = self.state.world.events(
                        account_id, ad, day, country, self.state.revision, today
                    )
                    if events is None:
                        continue
                    row = self._insight_row(
                        account, ad, day, country, events, fields, windows, "country" in breakdowns
                    )
                    if no_reach:
                        row.pop("reach", None)
                    rows.append(row)
            day += timedelta(days=1)
        return self._mangle(account_id, since, until, rows)

    def _mangle(self, account_id: str, since: date, until: date, rows: list[dict]) -> list[dict]:
        """Input faults that change the set of rows rather than their values."""
        day_faults = self._day_faults
        mangled = []
        for row in rows:
            kinds = day_faults(row["date_start"])
            mangled.append(row)
            if "duplicate_rows" in kinds:
                mangled.append(dict(row))
        repeat_days = [
            r["date_start"] for r in rows if "repeated_page" in day_faults(r["date_start"])
        ]
        if repeat_days:
            # The rows of that day come back twice in a row, as a page Meta served again.
            first = mangled.index(next(r for r in mangled if r["date_start"] == repeat_days[0]))
            block = [dict(r) for r in mangled[first : first + DEFAULT_LIMIT]]
            mangled[first + len(block) : first + len(block)] = block
        for kind_day in {r["date_start"] for r in rows}:
            if "out_of_range_date" in day_faults(kind_day) and mangled:
                stray = dict(next(r for r in mangled if r["date_start"] == kind_day))
                stray["date_start"] = stray["date_stop"] = (until + timedelta(days=1)).isoformat()
                mangled.append(stray)
        return mangled

    def _insight_row(self, account, ad, day, country, events, fields, windows, by_country) -> dict:
        row: dict[str, Any] = {
            "account_id": account.spec.account_id,
            "account_currency": account.spec.currency,
            "campaign_id": ad.campaign_id,
            "campaign_name": account.object(ad.campaign_id).name,
            "adset_id": ad.adset_id,
            "adset_name": account.object(ad.adset_id).name,
            "ad_id": ad.id,
            "ad_name": ad.name,
            "impressions": str(events.impressions),
            "clicks": str(events.clicks),
            "reach": str(events.reach),
            "spend": format_minor(events.spend_minor, account.exponent),
            "ctr": f"{(events.clicks * 100 / events.impressions):.6f}",
        }
        corruptions = self._day_faults(day.isoformat())
        for kind in corruptions:
            row.update(_corrupt(kind, events, account.exponent))
        if "missing_ad_id" in corruptions:
            row.pop("ad_id")
        actions, values = actions_of(account, ad, day, events, windows)
        if "unknown_action" in corruptions:
            actions.append(
                {"action_type": "offsite_conversion.fb_pixel_custom_mystery", "value": "7"}
            )
        if "broken_funnel" in corruptions:
            # More people reach the last booking step than started the first.
            step_3 = "offsite_conversion.fb_pixel_add_payment_info"
            actions = [a for a in actions if a["action_type"] != step_3]
            actions.append({"action_type": step_3, "value": str(events.searches + 5)})
        if actions:
            row["actions"] = actions
        if values:
            row["action_values"] = values
        row = {k: v for k, v in row.items() if k in fields}
        row["date_start"] = row["date_stop"] = day.isoformat()
        if by_country:
            row["country"] = country
        return row

    def _start_report(self, account_id: str, query: dict[str, list[str]]) -> dict:
        self._known_account(account_id)
        rows = self._insights(account_id, query)  # validated now, like Meta does
        fault = self.state.faults.take("report", account_id, _days_spanned(query), REPORT_FAULTS)
        with self.state.lock:
            report_id = f"report_{len(self.state.reports) + 1}_{account_id}"
            self.state.reports[report_id] = {
                "account_id": account_id,
                "query": query,
                "polls": 0,
                "started": time.monotonic(),
                "rows": rows,  # the job's fixed result, paged once it is done
                "fault": fault.kind if fault else None,
            }
        return {"report_run_id": report_id}

    def _report(self, report_id: str) -> dict:
        try:
            return self.state.reports[report_id]
        except KeyError:
            raise ApiError(400, 100, f"(#100) Unknown report run {report_id}") from None

    def _report_status(self, report_id: str) -> dict:
        report = self._report(report_id)
        report["polls"] += 1
        if report["fault"] == "report_failed":
            status, percent = "Job Failed", 0
        elif report["fault"] == "report_stalled":
            status, percent = "Job Running", 10
        elif report["fault"] == "report_creeping":
            status, percent = "Job Running", min(99, report["polls"])
        else:
            # Meta computes a job in the background: it is done once its time has passed,
            # however often it is polled.
            elapsed = time.monotonic() - report["started"]
            if elapsed >= self.state.report_seconds:
                status, percent = "Job Completed", 100
            else:
                share = int(100 * elapsed / self.state.report_seconds)
                status, percent = ("Job Started" if share < 10 else "Job Running"), share
        answer: dict[str, Any] = {
            "id": report_id,
            "account_id": report["account_id"],
            "async_status": status,
            "async_percent_completion": percent,
        }
        if report["fault"] == "report_failed":
            answer.update(REPORT_FAILURE)  # v25.0: a failed job says why
        return answer

    def _limit(self, query: dict[str, list[str]]) -> int:
        try:
            return min(MAX_LIMIT, int((query.get("limit") or [DEFAULT_LIMIT])[0]))
        except ValueError:
            raise ApiError(400, 100, "(#100) limit must be an integer") from None

    def _next_url(self, params: dict[str, str]) -> str:
        host = self.headers.get("Host", "127.0.0.1")
        return f"http://{host}{urlsplit(self.path).path}?{urlencode(params)}"

    def _page(self, rows: list[dict], query: dict[str, list[str]]) -> dict:
        limit = self._limit(query)
        after = (query.get("after") or [None])[0]
        start = _offset(after) if after else 0
        chunk = rows[start : start + limit]
        body: dict[str, Any] = {"data": chunk}
        if chunk:
            body["paging"] = {
                "cursors": {"before": _cursor(start), "after": _cursor(start + len(chunk))}
            }
            if start + len(chunk) < len(rows):
                params = {k: v[0] for k, v in query.items() if k != "access_token"}
                params["after"] = _cursor(start + len(chunk))
                body["paging"]["next"] = self._next_url(params)
        return self._page_fault(body, query, limit)

    def _page_fault(self, body: dict, query: dict[str, list[str]], limit: int) -> dict:
        """A page whose paging or size is wrong, as a PAGE_FAULTS fault says."""
        kinds = {"oversized_page"} if body["data"] else set()
        if "next" in body.get("paging", {}):
            kinds |= {"foreign_next", "repeated_cursor"}
        route, account = self._scope
        fault = self.state.faults.take(route, account, kinds=kinds) if kinds else None
        if fault is None:
            return body
        if fault.kind == "oversized_page":
            rows = body["data"]
            body["data"] = [dict(rows[i % len(rows)]) for i in range(2 * limit)]
        elif fault.kind == "foreign_next":
            target, parts = urlsplit(fault.target or ""), urlsplit(body["paging"]["next"])
            body["paging"]["next"] = urlunsplit(
                (target.scheme, target.netloc, parts.path, parts.query, "")
            )
        else:  # repeated_cursor: the same cursor, or none on a first page, once more
            params = {k: v[0] for k, v in query.items() if k != "access_token"}
            body["paging"]["next"] = self._next_url(params)
        return body


class SandboxServer:
    """Serve a `World` on 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(
        self,
        world: World | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        access_token: str = SANDBOX_TOKEN,
        app_secret: str | None = None,
        now: datetime | None = None,
    ) -> None:
        self.state = SandboxState(
            world or World(), access_token=access_token, app_secret=app_secret, now=now
        )
        handler = type("BoundSandboxHandler", (SandboxHandler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True, name="meta-sandbox"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Test conveniences that go through the same state the HTTP control endpoint changes.
    def set_revision(self, revision: int) -> None:
        with self.state.lock:
            self.state.revision = revision

    def remove_delivery(self, account_id: str, day: date, ad_id: str | None = None) -> None:
        """Meta stops reporting `ad_id`'s rows of `day` (every ad's if None); the world's
        ground truth changes with it."""
        with self.state.lock:
            self.state.world.remove_delivery(account_id, day, ad_id)

    def inject(self, kind: str, **options: Any):
        """Inject a fault (see `faults.Fault`); returns it, so tests can read `fired`."""
        return self.state.faults.add(kind=kind, **options)

    def clear_faults(self) -> None:
        self.state.faults.clear()

    def rate_limit(self, account_id: str, calls: int, window_seconds: float) -> None:
        with self.state.lock:
            self.state.rate_limits[account_id.removeprefix("act_")] = (calls, window_seconds)
