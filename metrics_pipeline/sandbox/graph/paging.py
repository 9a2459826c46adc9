"""Cursor paging like the Graph API's, and the PAGE_FAULTS that break it."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from metrics_pipeline.sandbox.graph.errors import ApiError
from metrics_pipeline.sandbox.graph.messages import Request
from metrics_pipeline.sandbox.graph.state import SandboxState

DEFAULT_LIMIT = 25
MAX_LIMIT = 5000


def cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def offset_of(text: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(text.encode()).decode().split(":")[1])
    except (ValueError, IndexError):
        raise ApiError(400, 100, "(#100) Invalid cursor") from None


def limit_of(request: Request) -> int:
    try:
        return min(MAX_LIMIT, int(request.param("limit", str(DEFAULT_LIMIT)) or ""))
    except ValueError:
        raise ApiError(400, 100, "(#100) limit must be an integer") from None


def _next_url(request: Request, params: dict[str, str]) -> str:
    host = request.headers.get("host", "127.0.0.1")
    return f"http://{host}{request.path}?{urlencode(params)}"


def _params_without_token(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in request.query.items() if k != "access_token"}


def page(state: SandboxState, request: Request, rows: list[dict]) -> dict[str, Any]:
    """The page of `rows` the request's `after` cursor and `limit` ask for."""
    limit = limit_of(request)
    after = request.param("after")
    start = offset_of(after) if after else 0
    chunk = rows[start : start + limit]
    body: dict[str, Any] = {"data": chunk}
    if chunk:
        body["paging"] = {"cursors": {"before": cursor(start), "after": cursor(start + len(chunk))}}
        if start + len(chunk) < len(rows):
            params = _params_without_token(request)
            params["after"] = cursor(start + len(chunk))
            body["paging"]["next"] = _next_url(request, params)
    return _page_fault(state, request, body, limit)


def _page_fault(
    state: SandboxState, request: Request, body: dict[str, Any], limit: int
) -> dict[str, Any]:
    """A page whose paging or size is wrong, as a PAGE_FAULTS fault says."""
    kinds = {"oversized_page"} if body["data"] else set()
    if "next" in body.get("paging", {}):
        kinds |= {"foreign_next", "repeated_cursor"}
    fault = state.faults.take(request.route, request.account_id, kinds=kinds) if kinds else None
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
        body["paging"]["next"] = _next_url(request, _params_without_token(request))
    return body
