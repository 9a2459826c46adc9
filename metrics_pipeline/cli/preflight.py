"""Before any run starts: what no retry inside a run can fix, found in seconds.

A mistyped setting, an expired API version, a missing database or a Meta host that refuses
connections would otherwise surface as step failures after minutes of work and retries.
Each check ends in SetupError or SettingError: one line naming what to fix (the variable
and its value, the database, the host) and what is accepted, never a secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import requests

from metrics_pipeline.clock import AS_OF_ENV, ClockResource
from metrics_pipeline.config.clients import (
    BUNDLED_CLIENTS_FILE,
    CLIENTS_FILE_ENV,
    clients_file_path,
)
from metrics_pipeline.definitions import META_ENV
from metrics_pipeline.env_settings import SettingError
from metrics_pipeline.http_bounds import origin
from metrics_pipeline.meta.client import connect_failure
from metrics_pipeline.meta.resource import DEFAULT_API_VERSION, MetaAdsResource
from metrics_pipeline.meta.versions import (
    VersionStatus,
    supported_versions,
    version_refusal,
    version_status,
)
from metrics_pipeline.warehouse.resource import WarehouseResource

TOKEN_ENV = "META_ACCESS_TOKEN"  # noqa: S105 - the variable's name, not a token
VERSION_ENV = META_ENV["api_version"]
PROBE_TIMEOUT_SECONDS = 10.0


class SetupError(RuntimeError):
    """Something to fix before a run can start."""


def check_api_version(environ: Mapping[str, str], echo: Callable[[str], None]) -> None:
    """The Marketing API version is one Meta serves as itself on the clock's today: an
    expired, unknown or misspelt one is refused (Meta would silently answer an expired one
    as a newer version); one expiring within the warning window is named."""
    version = environ.get(VERSION_ENV) or DEFAULT_API_VERSION
    named = VERSION_ENV if environ.get(VERSION_ENV) else f"{VERSION_ENV} (unset: the default)"
    today = ClockResource(as_of=environ.get(AS_OF_ENV, "")).now().date()
    refusal = version_refusal(version, today)
    if refusal:
        raise SettingError(f"{named}: {refusal}")
    report = version_status(version, today)
    if report.status is VersionStatus.EXPIRING:
        newest = supported_versions(today)[-1]
        echo(
            f"note: Marketing API {version} expires on {report.expires}, in "
            f"{(report.expires - today).days} day(s): set {VERSION_ENV}={newest}, the newest "
            "supported, after reading its changelog (README: Moving to a new API version)"
        )


def describe_clients_file(environ: Mapping[str, str]) -> str:
    """Which clients file a run reads, and why when it is the bundled demo one."""
    path = clients_file_path()
    if path == BUNDLED_CLIENTS_FILE and not environ.get(CLIENTS_FILE_ENV):
        return (
            f"Clients file: {path} (the bundled demo clients: {CLIENTS_FILE_ENV} is unset and "
            "there is no clients.yaml in this folder)"
        )
    return f"Clients file: {path.resolve()}"


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
