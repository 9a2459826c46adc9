"""`/__sandbox/state`: what tests change and read besides the Graph API itself (the clock,
the attribution revision, faults, rate limits, removed delivery, the request log). The
pipeline never calls it; it needs no token and is neither counted nor logged."""

from __future__ import annotations

import json
from datetime import date, datetime

from metrics_pipeline.sandbox.graph.messages import FakeResponse, Request, json_response
from metrics_pipeline.sandbox.graph.state import SandboxState

CONTROL_PREFIX = "/__sandbox/"


def is_control(request: Request) -> bool:
    return request.path.startswith(CONTROL_PREFIX)


def answer(state: SandboxState, request: Request) -> FakeResponse:
    """Apply a POSTed JSON change, then answer with the state as it now is."""
    if request.method == "POST":
        changes = json.loads(request.body or b"{}")
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
    return json_response(200, body)
