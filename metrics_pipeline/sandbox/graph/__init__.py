"""The Graph API imitation as a plain object: requests in, responses out, no sockets.

`FakeGraphApi.handle` takes one request and returns a `FakeResponse`; `sandbox.server`
carries both over HTTP. Routes are listed in `routing.ROUTES`.
"""

from metrics_pipeline.sandbox.graph.api import FakeGraphApi
from metrics_pipeline.sandbox.graph.messages import FakeResponse, Request
from metrics_pipeline.sandbox.graph.state import SANDBOX_TOKEN, SandboxState

__all__ = ["SANDBOX_TOKEN", "FakeGraphApi", "FakeResponse", "Request", "SandboxState"]
