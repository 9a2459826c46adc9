"""Before any run starts: what no retry inside a run can fix, found in seconds.

A missing database or a Meta host that refuses connections would otherwise surface as
step failures after minutes of retries. Each check ends in SetupError: one line naming
what to fix (the variable, the database, the host), never a secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import requests

from metrics_pipeline.http_bounds import origin
from metrics_pipeline.meta.client import connect_failure
from metrics_pipeline.meta.resource import MetaAdsResource
from metrics_pipeline.warehouse.resource import WarehouseResource

TOKEN_ENV = "META_ACCESS_TOKEN"  # noqa: S105 - the variable's name, not a token
PROBE_TIMEOUT_SECONDS = 10.0


class SetupError(RuntimeError):
    """Something to fix before a run can start."""


def check_token(environ: Mapping[str, str]) -> None:
    if not environ.get(TOKEN_ENV):
        raise SetupError(
            f"{TOKEN_ENV} is not set: export the access token of a user with ads_read on "
            "the clients' ad accounts (or run `metrics-pipeline demo`, which needs none)"
        )


def check_warehouse(warehouse: WarehouseResource) -> None:
    """Raises WarehouseUnavailableError (its own one line) when the database does not answer."""
    warehouse.check_reachable()


def check_meta_answers(
    meta: MetaAdsResource, echo: Callable[[str], None], pause_seconds: float = 2.0
) -> None:
    """Any HTTP answer from the Meta base URL will do; a refused or silent host is retried
    for the client's connect budget (`connect_budget_seconds`), then named."""
    endpoint = origin(meta.base_url)
    give_up_at = time.monotonic() + meta.connect_budget_seconds
    announced = False
    while True:
        try:
            requests.head(meta.base_url, timeout=PROBE_TIMEOUT_SECONDS, allow_redirects=False)
            return
        except requests.RequestException as exc:
            reason = connect_failure(exc) or type(exc).__name__
        if time.monotonic() + pause_seconds > give_up_at:
            raise SetupError(
                f"cannot connect to the Meta API at {endpoint} ({reason}) within "
                f"{meta.connect_budget_seconds:.0f}s: check META_API_BASE_URL and the network"
            )
        if not announced:
            echo(
                f"cannot connect to {endpoint} ({reason}); retrying for up to "
                f"{meta.connect_budget_seconds:.0f}s"
            )
            announced = True
        time.sleep(pause_seconds)
