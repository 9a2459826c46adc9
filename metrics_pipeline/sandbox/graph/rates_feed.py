"""The euro reference rates feed, served beside the Graph API at the ECB's own path.

Public like the ECB's: no token, no version prefix, no usage counting, XML not JSON.
"""

from __future__ import annotations

from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
from metrics_pipeline.sandbox.graph.messages import FakeResponse, Request
from metrics_pipeline.sandbox.graph.state import SandboxState


def is_feed(request: Request) -> bool:
    return request.path == FEED_PATH


def answer(state: SandboxState) -> FakeResponse:
    return FakeResponse(200, {"Content-Type": "text/xml"}, state.ecb.feed(state.clock()))
