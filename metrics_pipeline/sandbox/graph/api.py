"""`FakeGraphApi`: one request in, one `FakeResponse` out, in the order Meta checks things:
the call is logged and counted, a fault may answer instead, then the limit, the token and
the route."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from metrics_pipeline.sandbox.faults import ERROR_FAULTS, FEED_FAULTS, TRANSPORT_FAULTS, Fault
from metrics_pipeline.sandbox.graph import control, rates_feed
from metrics_pipeline.sandbox.graph.auth import authenticate
from metrics_pipeline.sandbox.graph.delivery import bad_gateway, delivered, redirect
from metrics_pipeline.sandbox.graph.errors import ApiError, fault_error
from metrics_pipeline.sandbox.graph.messages import FakeResponse, Request, json_response
from metrics_pipeline.sandbox.graph.routing import account_of, dispatch, route_kind
from metrics_pipeline.sandbox.graph.state import SANDBOX_TOKEN, SandboxState
from metrics_pipeline.sandbox.graph.usage import count_call, over_enforced_limit, usage_headers
from metrics_pipeline.sandbox.world import World

# Faults taken when a request arrives; report and page faults are taken where they act.
ARRIVAL_FAULTS = set(ERROR_FAULTS) | TRANSPORT_FAULTS


class FakeGraphApi:
    """The Graph API imitation over a `World`, without any transport."""

    def __init__(
        self,
        world: World | None = None,
        access_token: str = SANDBOX_TOKEN,
        app_secret: str | None = None,
        now: datetime | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = SandboxState(
            world or World(),
            access_token=access_token,
            app_secret=app_secret,
            now=now,
            monotonic=monotonic,
        )

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> FakeResponse:
        """Answer one request; `path` may carry its query string, as on a request line."""
        request = Request.build(method, path, query, headers, body)
        if control.is_control(request):
            return control.answer(self.state, request)
        if rates_feed.is_feed(request):
            fault = self.state.faults.take("rates", None, kinds=FEED_FAULTS)
            return rates_feed.answer(self.state, request, fault)
        state = self.state
        self._log(request)
        request = replace(
            request,
            route=route_kind(request.path),
            account_id=account_of(state.world, request.path),
        )
        pct, reset = count_call(state, request.account_id)
        fault = state.faults.take(
            request.route, request.account_id, request.days_spanned(), ARRIVAL_FAULTS
        )
        if fault is not None and fault.kind == "http_502":
            return bad_gateway()
        if fault is not None and fault.kind == "redirect":
            return redirect(fault, request.target)
        try:
            if fault is not None and fault.kind in ERROR_FAULTS:
                raise fault_error(fault.kind)
            if over_enforced_limit(state, request.account_id, pct):
                with state.lock:
                    state.throttled += 1
                raise fault_error("throttle_insights")
            authenticate(state, request)
            answer = dispatch(state, request)
            response = json_response(
                200, answer, usage_headers(state, request.account_id, pct, reset)
            )
        except ApiError as error:
            response = self._error_response(error, request, fault, pct, reset)
        return delivered(fault, response, state.lock)

    def _log(self, request: Request) -> None:
        """The path and the NAMES of the parameters, never their values: Meta-style calls
        may carry the token as `access_token` in the query string."""
        with self.state.lock:
            self.state.requests.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "route": request.path,
                    "parameters": sorted(request.query),
                    "authorization": "authorization" in request.headers,
                }
            )

    def _error_response(
        self, error: ApiError, request: Request, fault: Fault | None, pct: float, reset: float
    ) -> FakeResponse:
        regain = 0.0
        if error.throttling:
            # An injected fault says how long to stay away; the enforced limit says when the
            # oldest call leaves its window.
            regain = fault.regain_minutes if fault is not None else reset / 60
            reset = regain * 60
        shown = 100.0 if error.throttling else pct
        headers = usage_headers(self.state, request.account_id, shown, reset, regain)
        return json_response(error.status, error.body, headers)

    # Conveniences for Python callers; they change the same state `/__sandbox/state` does.
    def set_revision(self, revision: int) -> None:
        with self.state.lock:
            self.state.revision = revision

    def remove_delivery(self, account_id: str, day: date, ad_id: str | None = None) -> None:
        """Meta stops reporting `ad_id`'s rows of `day` (every ad's if None); the world's
        ground truth changes with it."""
        with self.state.lock:
            self.state.world.remove_delivery(account_id, day, ad_id)

    def inject(self, kind: str, **options: Any) -> Fault:
        """Inject a fault (see `faults.Fault`); returns it, so tests can read `fired`."""
        return self.state.faults.add(kind=kind, **options)

    def clear_faults(self) -> None:
        self.state.faults.clear()

    def rate_limit(self, account_id: str, calls: int, window_seconds: float) -> None:
        with self.state.lock:
            self.state.rate_limits[account_id.removeprefix("act_")] = (calls, window_seconds)
