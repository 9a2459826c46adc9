"""The Meta resource: configuration for the Graph API client, secrets from the environment."""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from metrics_pipeline.meta.client import GraphApiClient

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v27.0"


class MetaAdsResource(ConfigurableResource):
    """Meta Marketing API access. Wire `access_token` and `app_secret` with `EnvVar`.

    Its fields are the one copy of the client's settings and their defaults: the client
    built by `client()` reads them from here.
    """

    access_token: str = Field(
        default="",  # no default token: the client refuses to start, naming the variable
        description="META_ACCESS_TOKEN; sent only as a Bearer header.",
    )
    app_secret: str | None = Field(
        default=None, description="META_APP_SECRET; enables appsecret_proof."
    )
    base_url: str = DEFAULT_BASE_URL
    api_version: str = DEFAULT_API_VERSION
    page_size: int = 500
    page_grow_after: int = Field(
        default=50,
        ge=1,
        description="Clean result pages in a row before a page size Meta asked to reduce "
        "doubles again (toward page_size).",
    )
    max_parallel_accounts: int = Field(
        default=4,
        ge=1,
        description="Ad accounts read at the same time in one step (Meta limits each account).",
    )
    days_per_request: int = Field(default=7, description="Days per synchronous request.")
    sync_max_days: int = Field(default=7, description="Longer ranges run as async report jobs.")
    days_per_report: int = Field(default=31, description="Days per async report job.")
    report_poll_seconds: float = 1.0
    report_poll_max_seconds: float = 30.0
    report_stall_seconds: float = Field(
        default=900.0, description="A report without progress this long is retried, then split."
    )
    report_deadline_seconds: float = Field(
        default=3600.0,
        description="A report not complete this long after it started is retried, then split.",
    )
    max_pages_per_query: int = Field(default=10_000, ge=1, description="Pages per paged query.")
    request_timeout_seconds: float = Field(default=120.0, description="Per connect and read.")
    request_budget_seconds: float = Field(
        default=3600.0,
        description="How long one request is retried through throttling and server errors.",
    )
    # A wrong host is a configuration error: waiting the request budget for it only hides it.
    connect_budget_seconds: float = Field(
        default=60.0, description="Retries of refused connections, DNS failures, connect timeouts."
    )
    # request_timeout_seconds bounds each socket read; this bounds the whole body, so a body
    # that trickles in byte by byte still ends.
    body_deadline_seconds: float = Field(default=600.0, description="Whole response body.")
    max_response_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 120.0
    throttle_wait_seconds: float = Field(
        default=60.0, description="Wait when Meta throttles without saying for how long."
    )
    slow_down_at_percent: float = Field(
        default=75.0, description="Usage percent above which requests slow down."
    )
    slow_down_max_pause_seconds: float = 60.0

    def client(self, log: Any = None) -> GraphApiClient:
        return GraphApiClient(self, log=log)
