"""The Meta resource: configuration for the Graph API client, secrets from the environment."""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from metrics_pipeline.meta.client import GraphApiClient, RetrySettings

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v25.0"


class MetaAdsResource(ConfigurableResource):
    """Meta Marketing API access. Wire `access_token` and `app_secret` with `EnvVar`."""

    access_token: str = Field(description="META_ACCESS_TOKEN; sent only as a Bearer header.")
    app_secret: str | None = Field(
        default=None, description="META_APP_SECRET; enables appsecret_proof."
    )
    base_url: str = DEFAULT_BASE_URL
    api_version: str = DEFAULT_API_VERSION
    page_size: int = 500
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
    request_budget_seconds: float = 3600.0
    connect_budget_seconds: float = Field(
        default=60.0, description="Retries of refused connections, DNS failures, connect timeouts."
    )
    body_deadline_seconds: float = Field(default=600.0, description="Whole response body.")
    max_response_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 120.0
    throttle_wait_seconds: float = 60.0
    slow_down_at_percent: float = Field(
        default=75.0, description="Usage percent above which requests slow down."
    )
    slow_down_max_pause_seconds: float = 60.0

    def client(self, log: Any = None) -> GraphApiClient:
        return GraphApiClient(
            base_url=self.base_url,
            api_version=self.api_version,
            access_token=self.access_token,
            app_secret=self.app_secret,
            page_size=self.page_size,
            days_per_request=self.days_per_request,
            sync_max_days=self.sync_max_days,
            days_per_report=self.days_per_report,
            report_poll_seconds=self.report_poll_seconds,
            report_poll_max_seconds=self.report_poll_max_seconds,
            report_stall_seconds=self.report_stall_seconds,
            report_deadline_seconds=self.report_deadline_seconds,
            max_pages_per_query=self.max_pages_per_query,
            retry=RetrySettings(
                request_timeout_seconds=self.request_timeout_seconds,
                request_budget_seconds=self.request_budget_seconds,
                backoff_base_seconds=self.backoff_base_seconds,
                backoff_max_seconds=self.backoff_max_seconds,
                throttle_wait_seconds=self.throttle_wait_seconds,
                slow_down_at_percent=self.slow_down_at_percent,
                slow_down_max_pause_seconds=self.slow_down_max_pause_seconds,
                connect_budget_seconds=self.connect_budget_seconds,
                body_deadline_seconds=self.body_deadline_seconds,
                max_response_bytes=self.max_response_bytes,
            ),
            log=log,
        )
