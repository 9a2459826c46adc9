"""A Graph API client that keeps going through throttling and transient failures.

Every request has a time budget rather than a retry count, so a long throttle delays a
backfill instead of aborting it. The token travels only in the Authorization header; the
client's messages never contain it. Bodies are read within `http_bounds`' cap and deadline,
and no redirect is followed: one to another host is an error naming it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import orjson
import requests
import urllib3

from metrics_pipeline import stopping
from metrics_pipeline.http_bounds import (
    BodyTooLarge,
    BoundsError,
    RedirectRefused,
    open_bounded,
    origin,
    read_body,
)
from metrics_pipeline.meta.errors import (
    ErrorKind,
    MetaApiError,
    ReduceDataError,
    classify,
)
from metrics_pipeline.meta.page_size import MIN_PAGE_SIZE, PageSize
from metrics_pipeline.meta.usage import GOVERNOR, UsageGovernor
from metrics_pipeline.text import readable

if TYPE_CHECKING:  # the resource builds this client; only its settings are read here
    from metrics_pipeline.meta.resource import MetaAdsResource

ALL_EFFECTIVE_STATUSES = (
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
)
INSIGHT_FIELDS = (
    "account_id",
    "account_currency",
    "campaign_id",
    "campaign_name",
    "adset_id",
    "adset_name",
    "ad_id",
    "ad_name",
    "spend",
    "impressions",
    "clicks",
    "reach",
    "actions",
    "action_values",
)
OBJECT_FIELDS = {
    "campaigns": (
        "id",
        "name",
        "status",
        "effective_status",
        "objective",
        "daily_budget",
        "lifetime_budget",
        "created_time",
        "updated_time",
    ),
    "adsets": (
        "id",
        "name",
        "campaign_id",
        "status",
        "effective_status",
        "daily_budget",
        "lifetime_budget",
        "created_time",
        "updated_time",
    ),
    "ads": (
        "id",
        "name",
        "campaign_id",
        "adset_id",
        "status",
        "effective_status",
        "created_time",
        "updated_time",
    ),
}


# Query parameters that are credentials, not part of what a page is.
SECRET_PARAMS = {"access_token", "appsecret_proof"}
# Async report jobs started and not yet awaited, per range or split: enough for Meta to
# compute a year's monthly chunks or a split's parts side by side, few enough that a split
# into hundreds of ad sets does not start hundreds of jobs at once.
REPORTS_AHEAD = 12


def connect_failure(exc: requests.RequestException) -> str | None:
    """The root cause's class name when `exc` failed before a connection existed (refused,
    DNS, connect timeout); None for failures of an open connection (resets, read timeouts)."""
    reason: BaseException | None = exc
    if isinstance(exc, requests.ConnectionError) and exc.args:
        reason = getattr(exc.args[0], "reason", exc.args[0])
    if not isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    ) and not isinstance(exc, requests.ConnectTimeout):
        return None
    root = reason
    while root is not None and (root.__cause__ or root.__context__) is not None:
        root = root.__cause__ or root.__context__
    return type(root or exc).__name__


class BearerAuth(requests.auth.AuthBase):
    """The token as `Authorization: Bearer`. Given as the request's auth, it also spares
    requests its look for a ~/.netrc on every call (about 2% of a backfill's CPU)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


@dataclass(frozen=True)
class CallSite:
    """Who a request is for: named in every log line and error, never the token."""

    client_id: str
    account_id: str
    what: str

    def describe(self) -> str:
        return f"client {self.client_id!r}, account {self.account_id}, {self.what}"


def _status_filter(level: str) -> str:
    return json.dumps(
        [
            {
                "field": f"{level}.effective_status",
                "operator": "IN",
                "value": list(ALL_EFFECTIVE_STATUSES),
            }
        ]
    )


class GraphApiClient:
    def __init__(
        self,
        settings: MetaAdsResource,
        *,
        log: logging.Logger | Any | None = None,
        governor: UsageGovernor | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if not settings.access_token:
            raise MetaApiError(ErrorKind.AUTH, "META_ACCESS_TOKEN is not set")
        # Every limit is read from the resource: its fields hold the one copy of the defaults.
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.api_version = settings.api_version
        self._token = settings.access_token
        self._secret = settings.app_secret or None
        # When each report job was started (monotonic): a job started a while ago is
        # polled at once rather than after a full poll interval.
        self._report_started: dict[str, float] = {}
        # The result page size each account was last answered at (see `page_size.py`).
        self._page_sizes: dict[str, PageSize] = {}
        self.log = log or logging.getLogger(__name__)
        self.governor = governor or GOVERNOR
        self.session = session or requests.Session()
        self._auth = BearerAuth(self._token)

    # -- secrets stay out of every text ---------------------------------------------------
    def redact(self, text: str) -> str:
        for secret in (self._token, self._secret):
            if secret:
                text = text.replace(secret, "[redacted]")
        return text

    def _headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    def _signed(self, params: Mapping[str, Any]) -> dict[str, Any]:
        signed = {k: v for k, v in params.items() if k != "access_token"}
        if self._secret:
            signed["appsecret_proof"] = hmac.new(
                self._secret.encode(), self._token.encode(), hashlib.sha256
            ).hexdigest()
        return signed

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{self.api_version}/{path.lstrip('/')}"

    # -- one request, retried by meaning --------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        ceiling = min(
            self.settings.backoff_max_seconds,
            self.settings.backoff_base_seconds * 2 ** (attempt - 1),
        )
        return random.uniform(ceiling / 2, ceiling)

    def _pause(self, key: str) -> float:
        return self.governor.pause_for(
            key, self.settings.slow_down_at_percent, self.settings.slow_down_max_pause_seconds
        )

    def request(
        self, method: str, url: str, params: Mapping[str, Any] | None, site: CallSite
    ) -> dict[str, Any]:
        started = time.monotonic()
        deadline = started + self.settings.request_budget_seconds
        key = f"act_{site.account_id.removeprefix('act_')}"
        attempt = 0
        unreachable_since: float | None = None  # start of the current run of connect failures
        while True:
            attempt += 1
            pause = self._pause(key)
            if pause > 0:
                if time.monotonic() + pause > deadline:
                    raise MetaApiError(
                        ErrorKind.THROTTLED,
                        f"Meta usage limit for "
                        f"{site.describe()}: access not regained within the "
                        f"{self.settings.request_budget_seconds:.0f}s budget",
                    )
                self.log.info(f"Pausing {pause:.1f}s for Meta usage limits ({site.describe()})")
                stopping.wait(pause, f"pausing for Meta usage limits ({site.describe()})")
            kind, detail, error = self._attempt(method, url, params, site, key)
            if kind is None:
                return error  # the body, on success
            if kind in (ErrorKind.AUTH, ErrorKind.PERMISSION, ErrorKind.INVALID):
                raise MetaApiError(
                    kind,
                    f"Meta API refused {site.describe()}: {detail}",
                    code=error.get("code"),
                    subcode=error.get("error_subcode"),
                )
            if kind is ErrorKind.REDUCE_DATA:
                raise ReduceDataError(
                    kind,
                    f"Meta asked for less data ({site.describe()}): {detail}",
                    code=error.get("code"),
                )
            now = time.monotonic()
            give_up_at = deadline
            if kind is ErrorKind.UNREACHABLE:
                unreachable_since = unreachable_since or now
                give_up_at = min(deadline, unreachable_since + self.settings.connect_budget_seconds)
            else:
                unreachable_since = None
            if kind is ErrorKind.THROTTLED:
                wait = max(self._pause(key), self.settings.throttle_wait_seconds)
            else:
                wait = self._backoff(attempt)
            if now + wait > give_up_at:
                raise MetaApiError(
                    kind,
                    f"Gave up on {site.describe()} after {attempt} "
                    f"attempts in {now - started:.1f}s: {detail}",
                    code=error.get("code"),
                )
            self.log.warning(
                f"Retrying {site.describe()} in {wait:.1f}s (attempt {attempt}, "
                f"{kind.value}): {detail}"
            )
            if kind is ErrorKind.THROTTLED:
                self.governor.hold(key, wait)
            else:
                stopping.wait(wait, f"waiting to retry {site.describe()}")

    def _attempt(
        self, method: str, url: str, params: Mapping[str, Any] | None, site: CallSite, key: str
    ) -> tuple[ErrorKind | None, str, dict[str, Any]]:
        """One request: (None, "", body) on success, else (kind, detail naming the host,
        Meta's error object)."""
        endpoint = origin(url)
        try:
            # Meta answers API calls itself: any redirect is refused, one to another host
            # (which would get the request and hand back its rows) named in the error.
            response = open_bounded(
                self.session,
                method,
                url,
                timeout=self.settings.request_timeout_seconds,
                params=self._signed(params or {}) if params is not None else None,
                headers=self._headers(),
                auth=self._auth,
            )
        except RedirectRefused as exc:
            return ErrorKind.INVALID, f"{endpoint} {exc.reason}", {}
        except requests.RequestException as exc:
            cause = connect_failure(exc)
            if cause is not None:
                return ErrorKind.UNREACHABLE, f"cannot connect to {endpoint} ({cause})", {}
            return ErrorKind.TRANSIENT, f"{type(exc).__name__} from {endpoint}", {}
        with response:
            self.governor.observe(key, response.headers)
            try:
                content = read_body(
                    response,
                    max_bytes=self.settings.max_response_bytes,
                    deadline_seconds=self.settings.body_deadline_seconds,
                )
            except BodyTooLarge as exc:  # never the same request again: ask for less
                return ErrorKind.REDUCE_DATA, f"{endpoint} {exc.reason}", {}
            except BoundsError as exc:
                return ErrorKind.TRANSIENT, f"{endpoint} {exc.reason}", {}
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            return (
                ErrorKind.TRANSIENT,
                f"{endpoint} answered HTTP {response.status_code} with a truncated or "
                "non-JSON body",
                {},
            )
        if not isinstance(body, dict):
            return ErrorKind.TRANSIENT, f"{endpoint} answered HTTP {response.status_code}", {}
        if response.ok and "error" not in body:
            return None, "", body
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        kind = classify(response.status_code, error)
        text = readable(self.redact(str(error.get("message", f"HTTP {response.status_code}"))))
        # Codes are numbers from Meta; anything else in them is shown as harmlessly as text.
        code = readable(error.get("code"), 20)
        subcode = "/" + readable(error["error_subcode"], 20) if error.get("error_subcode") else ""
        detail = f"{endpoint} answered HTTP {response.status_code}, code {code}{subcode}: {text}"
        return kind, detail, error

    # -- paging ---------------------------------------------------------------------------
    def paginate(
        self, path: str, params: Mapping[str, Any], site: CallSite, *, shrink_pages: bool = False
    ) -> Iterator[dict]:
        """Every row of a paged edge. Each page must stay within what was asked (`limit`
        rows, `max_pages_per_query` pages, the configured host, no cursor twice). With
        `shrink_pages`, pages ask for the account's remembered page size, and "reduce the
        amount of data" halves it (down to MIN_PAGE_SIZE) before the caller has to split the
        query; the smaller size holds for the following pages and queries too."""
        url, query = self._url(path), dict(params)
        sizes = self.page_size(site.account_id) if shrink_pages else None
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        cursors: set[str] = set()
        for page in range(1, self.settings.max_pages_per_query + 1):
            if sizes is not None:
                query["limit"] = sizes.limit
            seen.add(_page_key(url, query))
            body, asked = self._page(url, query, site, sizes)
            seen.add(_page_key(url, asked))  # as read, when Meta had it read smaller
            rows = body.get("data", [])
            self._check_page_size(rows, asked, site, url)
            yield from rows
            next_url = (body.get("paging") or {}).get("next")
            if not next_url:  # a cursor without `next` is the end
                return
            url, query = self._follow(next_url, site)
            cursor = str(query.get("after", ""))
            if _page_key(url, query) in seen or (cursor and cursor in cursors):
                raise self._page_error(site, url, f"paging.next repeats a page after page {page}")
            cursors.add(cursor)
            if "limit" in params:
                query["limit"] = params["limit"]
        raise self._page_error(
            site, url, f"more than {self.settings.max_pages_per_query} pages (max_pages_per_query)"
        )

    def page_size(self, account_id: str) -> PageSize:
        """The account's result page size in this client: one per account, kept between
        its queries."""
        key = f"act_{account_id.removeprefix('act_')}"
        if key not in self._page_sizes:
            self._page_sizes[key] = PageSize(
                self.settings.page_size, self.settings.page_size, self.settings.page_grow_after
            )
        return self._page_sizes[key]

    def _page(
        self, url: str, query: dict[str, Any], site: CallSite, sizes: PageSize | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """One page and the query that produced it."""
        while True:
            try:
                body = self.request("GET", url, query, site)
            except ReduceDataError:
                if sizes is None or not sizes.shrink():
                    raise
                query = {**query, "limit": sizes.limit}
                self.log.warning(
                    f"Reading pages of {sizes.limit} rows on Meta's request ({site.describe()})"
                )
                continue
            if sizes is not None:
                sizes.page_read()
            return body, query

    def _follow(self, next_url: str, site: CallSite) -> tuple[str, dict[str, Any]]:
        """The URL and query of `paging.next`, only on the configured host: the token and
        appsecret_proof go nowhere else."""
        if origin(next_url) != origin(self.base_url):
            raise MetaApiError(
                ErrorKind.INVALID,
                f"paging.next for {site.describe()} points at {origin(next_url)}, not the "
                f"configured {origin(self.base_url)}: not followed",
            )
        parts = urlsplit(next_url)
        query = {k: v for k, v in parse_qsl(parts.query) if k not in SECRET_PARAMS}
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), query

    def _check_page_size(
        self, rows: list[dict], asked: Mapping[str, Any], site: CallSite, url: str
    ) -> None:
        limit = int(asked.get("limit") or 0)
        if limit and len(rows) > limit:
            raise self._page_error(site, url, f"a page of {len(rows)} rows for a limit of {limit}")

    def _page_error(self, site: CallSite, url: str, what: str) -> MetaApiError:
        # Retryable: the step fails, frees its slot and may try again later; never accepted.
        return MetaApiError(
            ErrorKind.TRANSIENT, f"Refused paging from {origin(url)} for {site.describe()}: {what}"
        )

    # -- resources ------------------------------------------------------------------------
    def account(self, account_id: str, site: CallSite) -> dict[str, Any]:
        return self.request(
            "GET",
            self._url(account_id),
            {"fields": "name,currency,timezone_name,account_status"},
            site,
        )

    def objects(self, account_id: str, edge: str, site: CallSite) -> list[dict[str, Any]]:
        params = {
            "fields": ",".join(OBJECT_FIELDS[edge]),
            "limit": self.settings.page_size,
            "filtering": _status_filter(edge.rstrip("s")),
        }
        return list(self.paginate(f"{account_id}/{edge}", params, site))

    def insight_chunks(
        self,
        account_id: str,
        since: date,
        until: date,
        attribution_windows: tuple[str, ...],
        client_id: str,
    ) -> Iterator[tuple[date, date, list[dict[str, Any]]]]:
        """Ad-level daily insights by country for every status, one chunk of days at a time
        (first day, last day, rows), so a long range never has to sit in memory whole.

        Short ranges are read synchronously in chunks of `days_per_request`; longer ones run
        as async report jobs of up to `days_per_report` days. Meta's "reduce the amount of
        data" splits the range, then the page; on a finished report's result page it halves
        the page first. A report that fails, stalls or passes its deadline is retried once,
        then split by campaign, then ad set, then into shorter ranges.
        """
        query = InsightQuery(account_id, client_id, since, until, tuple(attribution_windows))
        use_reports = (until - since).days + 1 > self.settings.sync_max_days
        step = self.settings.days_per_report if use_reports else self.settings.days_per_request
        chunks = list(query.chunks(step))
        if not use_reports:
            for chunk in chunks:
                yield chunk.since, chunk.until, self._sync(chunk, self.settings.page_size)
            return
        for chunk, rows in self._reports(chunks):
            yield chunk.since, chunk.until, rows

    # -- synchronous ----------------------------------------------------------------------
    def _sync(self, query: InsightQuery, limit: int) -> list[dict[str, Any]]:
        site = query.site()
        try:
            return list(self.paginate(f"{query.account_id}/insights", query.params(limit), site))
        except ReduceDataError:
            if query.since < query.until:
                first, second = query.halves()
                self.log.warning(f"Splitting {site.describe()} at {first.until} on Meta's request")
                return self._sync(first, limit) + self._sync(second, limit)
            if limit > MIN_PAGE_SIZE:
                smaller = max(MIN_PAGE_SIZE, limit // 2)
                self.log.warning(f"Asking for pages of {smaller} rows ({site.describe()})")
                return self._sync(query, smaller)
            raise

    # -- async report jobs ----------------------------------------------------------------
    def _reports(
        self, queries: list[InsightQuery]
    ) -> Iterator[tuple[InsightQuery, list[dict[str, Any]]]]:
        """Each query's rows, in order. Jobs are started up to REPORTS_AHEAD before they are
        awaited, so Meta computes them side by side: the chunks of a range, or the parts of
        a split report, wait about as long as their slowest job, not the sum of them."""
        queued: deque[tuple[InsightQuery, str | MetaApiError | ReportFailedError]] = deque()
        for query in queries:
            if len(queued) == REPORTS_AHEAD:
                waiting, started = queued.popleft()
                yield waiting, self._report(waiting, started)
            queued.append((query, self._try_start_report(query)))
        while queued:
            waiting, started = queued.popleft()
            yield waiting, self._report(waiting, started)

    def _try_start_report(self, query: InsightQuery) -> str | MetaApiError | ReportFailedError:
        """A started job's id, or the failure to start it, which `_report` handles."""
        try:
            return self._start_report(query, query.site())
        except (ReduceDataError, ReportFailedError) as exc:
            return exc

    def _report(
        self, query: InsightQuery, started: str | MetaApiError | ReportFailedError | None = None
    ) -> list[dict[str, Any]]:
        """The rows of one job: awaited (started now, or `started` already), retried once,
        then split."""
        site = query.site()
        for attempt in (1, 2):
            try:
                pending, started = started, None
                if isinstance(pending, Exception):
                    raise pending
                return self._await_report(pending or self._start_report(query, site), site)
            except ReduceDataError:
                break
            except ReportFailedError as exc:
                self.log.warning(f"Report for {site.describe()} {exc} (attempt {attempt})")
        return self._split_report(query, site)

    def _split_report(self, query: InsightQuery, site: CallSite) -> list[dict[str, Any]]:
        if query.scope is None:
            parts = [query.within("campaign.id", c) for c in self._ids(query, "campaigns")]
            how = "campaign"
        elif query.scope[0] == "campaign.id":
            adsets = self._ids(query, "adsets", campaign_id=query.scope[1])
            parts = [query.within("adset.id", a) for a in adsets]
            how = "ad set"
        elif query.since < query.until:
            parts = list(query.halves())
            how = "shorter ranges"
        else:
            raise MetaApiError(
                ErrorKind.TRANSIENT,
                f"Meta could not produce the insights report for {site.describe()} even "
                "split to one ad set and one day",
            )
        self.log.warning(f"Splitting the report for {site.describe()} by {how} ({len(parts)})")
        return [row for _, rows in self._reports(parts) for row in rows]

    def _ids(self, query: InsightQuery, edge: str, campaign_id: str | None = None) -> list[str]:
        site = CallSite(query.client_id, query.account_id, f"{edge} for splitting a report")
        objects = self.objects(query.account_id, edge, site)
        return sorted(
            o["id"] for o in objects if campaign_id is None or o.get("campaign_id") == campaign_id
        )

    def _start_report(self, query: InsightQuery, site: CallSite) -> str:
        started = self.request(
            "POST", self._url(f"{query.account_id}/insights"), query.params(None), site
        )
        report_id = str(started.get("report_run_id") or "")
        if not report_id:
            raise ReportFailedError("started without a report_run_id")
        self._report_started[report_id] = time.monotonic()
        return report_id

    def _await_report(self, report_id: str, site: CallSite) -> list[dict[str, Any]]:
        begun = time.monotonic()
        last_progress, progressed_at = -1, begun
        wait = self.settings.report_poll_seconds
        # The first poll waits one interval after the job STARTED, not after now.
        started = self._report_started.pop(report_id, begun)
        sleep = max(0.0, wait - (begun - started))
        while True:
            stopping.wait(sleep, f"waiting for Meta's report for {site.describe()}")
            status = self.request("GET", self._url(report_id), {}, site)
            state = status.get("async_status")
            percent = int(status.get("async_percent_completion") or 0)
            if state == "Job Completed":
                break
            if state in ("Job Failed", "Job Skipped"):
                raise ReportFailedError(f"ended as {state!r}{_failure_details(status)}")
            now = time.monotonic()
            if percent != last_progress:
                last_progress, progressed_at = percent, now
            if now - progressed_at > self.settings.report_stall_seconds:
                raise ReportFailedError(
                    f"stalled at {percent}% for {now - progressed_at:.0f}s ({readable(state)})"
                )
            # Progress that never ends is no better than none: the job gets a deadline too.
            if now - started > self.settings.report_deadline_seconds:
                raise ReportFailedError(
                    f"not complete {now - started:.1f}s after it started, at {percent}% "
                    f"(report_deadline_seconds {self.settings.report_deadline_seconds:g})"
                )
            wait = min(self.settings.report_poll_max_seconds, wait * 1.5)
            sleep = wait
        params = {"limit": self.settings.page_size}
        return list(self.paginate(f"{report_id}/insights", params, site, shrink_pages=True))


def _page_key(url: str, query: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What identifies a page: its URL and its query, credentials aside."""
    return url, tuple(sorted((k, str(v)) for k, v in query.items() if k not in SECRET_PARAMS))


class ReportFailedError(RuntimeError):
    """An async insights job that failed or stopped making progress."""


def _failure_details(status: Mapping[str, Any]) -> str:
    """What a failed report run says about itself (v25.0 and later), on one line."""
    parts = [
        f"{label} {status[key]}"
        for key, label in (("error_code", "code"), ("error_subcode", "subcode"))
        if status.get(key) not in (None, "")
    ]
    parts += [
        f"{label} {readable(status[key])!r}"
        for key, label in (
            ("error_message", "message"),
            ("error_user_title", "title"),
            ("error_user_msg", "user message"),
        )
        if status.get(key)
    ]
    return f" ({', '.join(parts)})" if parts else ""


@dataclass(frozen=True)
class InsightQuery:
    account_id: str
    client_id: str
    since: date
    until: date
    windows: tuple[str, ...]
    scope: tuple[str, str] | None = None  # ("campaign.id" | "adset.id", id)

    def site(self) -> CallSite:
        where = f" {self.scope[0]}={self.scope[1]}" if self.scope else ""
        return CallSite(
            self.client_id, self.account_id, f"insights {self.since}..{self.until}{where}"
        )

    def chunks(self, days: int) -> list[InsightQuery]:
        parts, start = [], self.since
        while start <= self.until:
            end = min(self.until, start + timedelta(days=days - 1))
            parts.append(replace(self, since=start, until=end))
            start = end + timedelta(days=1)
        return parts

    def halves(self) -> tuple[InsightQuery, InsightQuery]:
        middle = self.since + timedelta(days=(self.until - self.since).days // 2)
        return (replace(self, until=middle), replace(self, since=middle + timedelta(days=1)))

    def within(self, field: str, object_id: str) -> InsightQuery:
        return replace(self, scope=(field, object_id))

    def params(self, limit: int | None) -> dict[str, Any]:
        filtering = [
            {
                "field": "ad.effective_status",
                "operator": "IN",
                "value": list(ALL_EFFECTIVE_STATUSES),
            }
        ]
        if self.scope:
            filtering.append({"field": self.scope[0], "operator": "IN", "value": [self.scope[1]]})
        params: dict[str, Any] = {
            "level": "ad",
            "fields": ",".join(INSIGHT_FIELDS),
            "time_range": json.dumps(
                {"since": self.since.isoformat(), "until": self.until.isoformat()}
            ),
            "time_increment": 1,
            "breakdowns": json.dumps(["country"]),
            "action_attribution_windows": json.dumps(list(self.windows)),
            "filtering": json.dumps(filtering),
        }
        if limit is not None:
            params["limit"] = limit
        return params
