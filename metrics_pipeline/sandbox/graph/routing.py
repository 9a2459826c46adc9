"""Which function answers which Graph API path.

To add an endpoint, write its handler (`handler(state, request, **path_groups) -> dict`,
raising `ApiError` to refuse) and add one `Route` to ROUTES. Paths are matched after the
version prefix (`/v24.0/`); the route's `kind` is what faults name in `route=`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from metrics_pipeline.sandbox.graph import insights, objects, report_jobs
from metrics_pipeline.sandbox.graph.errors import ApiError
from metrics_pipeline.sandbox.graph.messages import Request
from metrics_pipeline.sandbox.graph.state import SandboxState
from metrics_pipeline.sandbox.world import World

Handler = Callable[..., dict[str, Any]]
VERSION = r"/v\d+\.\d+/"
DEFAULT_KIND = "account"  # what faults see an unknown path as


@dataclass(frozen=True)
class Route:
    pattern: str  # after the version prefix; named groups become the handler's arguments
    kind: str  # any | insights | objects | account | report, as faults match it
    handler: Handler
    method: str | None = None  # None: GET and POST alike

    def match(self, path: str) -> re.Match[str] | None:
        return re.fullmatch(VERSION + self.pattern, path)


ACCOUNT = r"act_(?P<account_id>\d+)"
REPORT = r"(?P<report_id>report_\w+)"
# The first route that matches method and path answers.
ROUTES: tuple[Route, ...] = (
    Route(ACCOUNT, "account", objects.account),
    Route(ACCOUNT + r"/(?P<edge>campaigns|adsets|ads)", "objects", objects.edge),
    Route(ACCOUNT + "/insights", "insights", report_jobs.start, method="POST"),
    Route(ACCOUNT + "/insights", "insights", insights.serve),
    Route(REPORT, "report", report_jobs.status),
    Route(REPORT + "/insights", "report", report_jobs.results),
)


def route_kind(path: str) -> str:
    """The kind of the route `path` belongs to, with or without a version prefix."""
    versioned = path if re.match(VERSION, path) else "/v0.0" + path
    for route in ROUTES:
        if route.match(versioned):
            return route.kind
    return DEFAULT_KIND


def account_of(world: World, path: str) -> str | None:
    """Digits of the known account a path is about, directly or through its report run."""
    match = re.match(VERSION + r"(?:act_|report_\d+_)(\d+)", path)
    return match.group(1) if match and match.group(1) in world.accounts else None


def dispatch(state: SandboxState, request: Request) -> dict[str, Any]:
    """The answer of the route the request names."""
    for route in ROUTES:
        if route.method not in (None, request.method):
            continue
        if match := route.match(request.path):
            return route.handler(state, request, **match.groupdict())
    raise ApiError(400, 803, f"Unsupported request path {request.path}")
