"""What goes into the fake Graph API and what comes out, free of any transport.

A `FakeResponse` also says HOW it travels when a fault breaks the transport (a delay, a
body in slow pieces, a connection dropped mid-body, a body of unknown length); the HTTP
server in `sandbox.server` carries that out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from metrics_pipeline.sandbox.graph.errors import ApiError

JSON_TYPE = "application/json; charset=UTF-8"


@dataclass(frozen=True)
class Request:
    method: str  # GET | POST
    target: str  # the path with its query string, as on the request line
    path: str
    query: dict[str, list[str]]  # URL parameters, then form fields of a POST body
    headers: dict[str, str]  # names in lower case
    body: bytes = b""
    route: str = "account"  # the route kind faults match on (see routing.route_kind)
    account_id: str | None = None  # digits of the account the request is about, if known

    @classmethod
    def build(
        cls,
        method: str,
        path: str,
        query: Mapping[str, str | list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> Request:
        """`path` may carry a query string; `query` adds parameters to it."""
        parts = urlsplit(path)
        params = parse_qs(parts.query, keep_blank_values=True)
        for key, value in (query or {}).items():
            params[key] = [value] if isinstance(value, str) else list(value)
        target = f"{parts.path}?{urlencode(params, doseq=True)}" if query else path
        if method == "POST" and body and not parts.path.startswith("/__sandbox/"):
            form = parse_qs(body.decode(), keep_blank_values=True)
            for key, values in form.items():
                params.setdefault(key, values)
        lowered = {name.lower(): value for name, value in (headers or {}).items()}
        return cls(method.upper(), target, parts.path, params, lowered, body)

    def param(self, name: str, default: str | None = None) -> str | None:
        return (self.query.get(name) or [default])[0]

    def json_param(self, name: str, default: Any) -> Any:
        if name not in self.query:
            return default
        raw = self.query[name][0]
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise ApiError(
                400, 100, f"(#100) param {name} must be JSON-encoded, got {raw!r}"
            ) from None

    def days_spanned(self) -> int:
        """Days in the request's time_range (0 without a valid one)."""
        try:
            time_range = json.loads(self.query["time_range"][0])
            since = date.fromisoformat(time_range["since"])
            until = date.fromisoformat(time_range["until"])
        except (KeyError, ValueError, TypeError, IndexError):
            return 0
        return (until - since).days + 1


@dataclass(frozen=True)
class FakeResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # Content-Length is the transport's
    body: bytes = b""
    delay_seconds: float = 0.0  # wait this long before answering at all
    pieces: int = 1  # send the body in this many parts ...
    piece_delay: float = 0.0  # ... waiting this long after each
    cut_at: int | None = None  # send only this many bytes of the body, then drop the connection
    # A body of unknown length: sent without Content-Length until it ends or the peer hangs
    # up, then the connection closes. Closing the generator tells it where sending stopped.
    stream: Generator[bytes, None, None] | None = None
    hold: Callable[[], None] | None = None  # called first; returns when the answer may go

    def json(self) -> Any:
        return json.loads(self.body)


def json_response(
    status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> FakeResponse:
    return FakeResponse(
        status, {"Content-Type": JSON_TYPE, **(headers or {})}, json.dumps(body).encode()
    )
