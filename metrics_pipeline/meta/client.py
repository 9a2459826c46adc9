"""A Graph API client that keeps going through throttling and transient failures.

Every request has a time budget rather than a retry count, so a long throttle delays a
backfill instead of aborting it. The token travels only in the Authorization header; the
client's messages never contain it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import orjson
import requests

from metrics_pipeline.meta.errors import (
    ErrorKind,
    MetaApiError,
    ReduceDataError,
    classify,
)
from metrics_pipeline.meta.usage import GOVERNOR, UsageGovernor

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


@dataclass(frozen=True)
class RetrySettings:
    request_timeout_seconds: float = 120.0
    request_budget_seconds: float = 3600.0
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 120.0
    throttle_wait_seconds: float = 60.0  # when Meta throttles without saying for how long
    slow_down_at_percent: float = 75.0
    slow_down_max_pause_seconds: float = 60.0


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
        *,
        base_url: str,
        api_version: str,
        access_token: str,
        app_secret: str | None = None,
        retry: RetrySettings | None = None,
        page_size: int = 500,
        days_per_request: int = 7,
        sync_max_days: int = 7,
        days_per_report: int = 31,
        report_poll_seconds: float = 1.0,
        report_poll_max_seconds: float = 30.0,
        report_stall_seconds: float = 900.0,
        log: logging.Logger | Any | None = None,
        governor: UsageGovernor | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if not access_token:
            raise MetaApiError(ErrorKind.AUTH, "META_ACCESS_TOKEN is not set")
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self._token = access_token
        self._secret = app_secret or None
        self.retry = retry or RetrySettings()
        self.page_size = page_size
        self.days_per_request = days_per_request
        self.sync_max_days = sync_max_days
        self.days_per_report = days_per_report
        self.report_poll_seconds = report_poll_seconds
        self.report_poll_max_seconds = report_poll_max_seconds
        self.report_stall_seconds = report_stall_seconds
        # When each report job was started (monotonic): a job started a while ago is
        # polled at once rather than after a full poll interval.
        self._report_started: dict[str, float] = {}
        self.log = log or logging.getLogger(__name__)
        self.governor = governor or GOVERNOR
        self.session = session or requests.Session()

    # -- secrets stay out of every text ---------------------------------------------------
    def redact(self, text: str) -> str:
        for secret in (self._token, self._secret):
            if secret:
                text = text.replace(secret, "[redacted]")
        return text

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}

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
            self.retry.backoff_max_seconds, self.retry.backoff_base_seconds * 2 ** (attempt - 1)
        )
        return random.uniform(ceiling / 2, ceiling)

    def _pause(self, key: str) -> float:
        return self.governor.pause_for(
            key, self.retry.slow_down_at_percent, self.retry.slow_down_max_pause_seconds
        )

    def request(
        self, method: str, url: str, params: Mapping[str, Any] | None, site: CallSite
    ) -> dict[str, Any]:
        started = time.monotonic()
        deadline = started + self.retry.request_budget_seconds
        key = f"act_{site.account_id.removeprefix('act_')}"
        attempt = 0
        while True:
            attempt += 1
            pause = self._pause(key)
            if pause > 0:
                if time.monotonic() + pause > deadline:
                    raise MetaApiError(
                        ErrorKind.THROTTLED,
                        f"Meta usage limit for "
                        f"{site.describe()}: access not regained within the "
                        f"{self.retry.request_budget_seconds:.0f}s budget",
                    )
                self.log.info(f"Pausing {pause:.1f}s for Meta usage limits ({site.describe()})")
                time.sleep(pause)
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
            if kind is ErrorKind.THROTTLED:
                wait = max(self._pause(key), self.retry.throttle_wait_seconds)
            else:
                wait = self._backoff(attempt)
            if time.monotonic() + wait > deadline:
                elapsed = time.monotonic() - started
                raise MetaApiError(
                    kind,
                    f"Gave up on {site.describe()} after {attempt} "
                    f"attempts in {elapsed:.0f}s: {detail}",
                    code=error.get("code"),
                )
            self.log.warning(
                f"Retrying {site.describe()} in {wait:.1f}s (attempt {attempt}, "
                f"{kind.value}): {detail}"
            )
            if kind is ErrorKind.THROTTLED:
                self.governor.hold(key, wait)
            else:
                time.sleep(wait)

    def _attempt(
        self, method: str, url: str, params: Mapping[str, Any] | None, site: CallSite, key: str
    ) -> tuple[ErrorKind | None, str, dict[str, Any]]:
        try:
            response = self.session.request(
                method,
                url,
                params=self._signed(params or {}) if params is not None else None,
                headers=self._headers(),
                timeout=self.retry.request_timeout_seconds,
            )
        except requests.RequestException as exc:
            return ErrorKind.TRANSIENT, self.redact(f"{type(exc).__name__}"), {}
        self.governor.observe(key, response.headers)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return (
                ErrorKind.TRANSIENT,
                f"HTTP {response.status_code} with a truncated or non-JSON body",
                {},
            )
        if not isinstance(body, dict):
            return ErrorKind.TRANSIENT, f"HTTP {response.status_code}: unexpected body", {}
        if response.ok and "error" not in body:
            return None, "", body
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        kind = classify(response.status_code, error)
        text = self.redact(str(error.get("message", f"HTTP {response.status_code}")))
        detail = (
            f"HTTP {response.status_code}, code {error.get('code')}"
            f"{'/' + str(error['error_subcode']) if error.get('error_subcode') else ''}: "
            f"{text}"
        )
        return kind, detail, error

    # -- paging ---------------------------------------------------------------------------
    def paginate(self, path: str, params: Mapping[str, Any], site: CallSite) -> Iterator[dict]:
        url, query = self._url(path), dict(params)
        while True:
            body = self.request("GET", url, query, site)
            yield from body.get("data", [])
            next_url = (body.get("paging") or {}).get("next")
            if not next_url:  # a cursor without `next` is the end
                return
            parts = urlsplit(next_url)
            query = {k: v for k, v in parse_qsl(parts.query) if k != "access_token"}
            url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))

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
            "limit": self.page_size,
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
        data" splits the range, then the page; a report that fails or stalls is retried
        once, then split by campaign, then ad set, then into shorter ranges.
        """
        query = InsightQuery(account_id, client_id, since, until, tuple(attribution_windows))
        use_reports = (until - since).days + 1 > self.sync_max_days
        step = self.days_per_report if use_reports else self.days_per_request
        chunks = list(query.chunks(step))
        if not use_reports:
            for chunk in chunks:
                yield chunk.since, chunk.until, self._sync(chunk, self.page_size)
            return
        # Every job of the range is started first, so Meta computes them side by side and
        # the range waits about as long as its slowest job, not the sum of them.
        started = [self._try_start_report(chunk) for chunk in chunks]
        for chunk, report_id in zip(chunks, started, strict=True):
            yield chunk.since, chunk.until, self._report(chunk, report_id)

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
        return [row for part in parts for row in self._report(part)]

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
        wait = self.report_poll_seconds
        # The first poll waits one interval after the job STARTED, not after now.
        since_start = begun - self._report_started.pop(report_id, begun)
        sleep = max(0.0, wait - since_start)
        while True:
            time.sleep(sleep)
            status = self.request("GET", self._url(report_id), {}, site)
            state = status.get("async_status")
            percent = int(status.get("async_percent_completion") or 0)
            if state == "Job Completed":
                break
            if state in ("Job Failed", "Job Skipped"):
                raise ReportFailedError(f"ended as {state!r}")
            now = time.monotonic()
            if percent != last_progress:
                last_progress, progressed_at = percent, now
            if now - progressed_at > self.report_stall_seconds:
                raise ReportFailedError(
                    f"stalled at {percent}% for {now - progressed_at:.0f}s ({state})"
                )
            wait = min(self.report_poll_max_seconds, wait * 1.5)
            sleep = wait
        return list(self.paginate(f"{report_id}/insights", {"limit": self.page_size}, site))


MIN_PAGE_SIZE = 25


class ReportFailedError(RuntimeError):
    """An async insights job that failed or stopped making progress."""


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
