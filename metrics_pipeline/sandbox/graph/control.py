"""`/__sandbox/state`: what tests change and read besides the Graph API itself (the clock,
the attribution revision, faults, rate limits, removed delivery, planted incidents, the
request log). The
pipeline never calls it; it is neither counted nor logged.

Every call carries the sandbox's token as `Authorization: Bearer <token>` (401 without it),
and a change is POSTed as `Content-Type: application/json` (415 otherwise). A web page the
user has open can send a `text/plain` POST to loopback without asking anyone; it can send
neither that header nor that type without the browser's CORS preflight, which this server
does not answer. So no page can inject faults or move the clock of a sandbox."""

from __future__ import annotations

import hmac
import json
from datetime import date, datetime

from metrics_pipeline.sandbox.graph.messages import FakeResponse, Request, json_response
from metrics_pipeline.sandbox.graph.state import SandboxState
from metrics_pipeline.sandbox.plants import parse_plant, plant

CONTROL_PREFIX = "/__sandbox/"


def is_control(request: Request) -> bool:
    return request.path.startswith(CONTROL_PREFIX)


def _refusal(request: Request, token: str) -> FakeResponse | None:
    header = request.headers.get("authorization", "")
    given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        return json_response(401, {"error": "the sandbox token is required as a Bearer header"})
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and media_type != "application/json":
        return json_response(415, {"error": "a change must be sent as application/json"})
    return None


def answer(state: SandboxState, request: Request) -> FakeResponse:
    """Apply a POSTed JSON change, then answer with the state as it now is."""
    refused = _refusal(request, state.access_token)
    if refused is not None:
        return refused
    if request.method == "POST":
        try:
            changes = json.loads(request.body or b"{}")
        except ValueError:
            return json_response(400, {"error": "the body is not JSON"})
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
            for spec in changes.get("plants") or []:
                try:
                    plant(state.world, parse_plant(spec))
                except (KeyError, ValueError) as exc:
                    return json_response(400, {"error": f"plant {spec}: {exc}"})
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
