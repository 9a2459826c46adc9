"""Who may call: the access token (Bearer header, or the access_token parameter Meta also
accepts) and, when the app has a secret, its appsecret_proof."""

from __future__ import annotations

import hashlib
import hmac

from metrics_pipeline.sandbox.graph.errors import ApiError
from metrics_pipeline.sandbox.graph.messages import Request
from metrics_pipeline.sandbox.graph.state import SandboxState


def authenticate(state: SandboxState, request: Request) -> None:
    """Raise Meta's error for a missing or wrong token or proof."""
    header = request.headers.get("authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
    token = token or request.param("access_token")
    if not token:
        raise ApiError(
            400,
            2500,
            "An active access token must be used to query information about the current user.",
        )
    if not hmac.compare_digest(token, state.access_token):
        raise ApiError(
            400, 190, "Invalid OAuth access token - Cannot parse access token", subcode=463
        )
    if state.app_secret:
        expected = hmac.new(state.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.param("appsecret_proof", "") or "", expected):
            raise ApiError(
                400,
                100,
                "Invalid appsecret_proof provided in the API argument",
                error_type="GraphMethodException",
            )
