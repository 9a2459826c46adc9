"""Shared fixtures: a real sandbox over HTTP, a real Dagster instance, SQLite and PostgreSQL."""

from __future__ import annotations

import gc
import os
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import BetaWarning, DagsterInstance, PreviewWarning

from metrics_pipeline.automation.notifier import AlertNotifier
from metrics_pipeline.catalog import Catalog, build_catalog
from metrics_pipeline.checks.settings import CheckSettings
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.config.clients import load_clients
from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.fx.resource import FxResource
from metrics_pipeline.meta.resource import MetaAdsResource
from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
from metrics_pipeline.sandbox.server import SANDBOX_TOKEN, SandboxServer
from metrics_pipeline.sandbox.world import AWKWARD_ACCOUNTS, World
from metrics_pipeline.steps.retries import RETRY_DELAY_ENV
from metrics_pipeline.warehouse.resource import WarehouseResource

# A failing step is retried after half a second, not five minutes: a defect fails the suite
# fast instead of stalling it (subprocesses inherit the setting).
os.environ.setdefault(RETRY_DELAY_ENV, "0.5")

warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)

POSTGRES_URL_ENV = "METRICS_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
BUNDLED_CLIENTS = Path(__file__).parents[1] / "metrics_pipeline" / "config" / "demo_clients.yaml"

# One fixed instant, never the real clock: the sandbox and the pipeline agree on "now", so
# every expected number is the same whenever and however long the suite runs. 20:00 UTC is
# already tomorrow in Auckland and Tokyo, so a UTC day taken for a local one shows.
NOW = datetime(2026, 11, 18, 20, 0, tzinfo=UTC)


# The longest test files, longest first: each runs on one worker from start to end, so they
# start first and the short files fill the other workers around them (durations from the
# per-file totals of a run with `--junitxml`, setup included).
LONGEST_FIRST = (
    "test_production_topology.py",
    "test_idempotency.py",
    "test_meta_faults.py",
    "test_crash_and_concurrency.py",
    "test_end_to_end.py",
    # After the first four: its exit times are measured, and the suite's start, when the
    # deployment test launches its processes, is the busiest minute of the machine.
    "test_stop_reports.py",
    "test_bench_smoke.py",
    "test_cli.py",
    "test_checks_and_alerts.py",
    "test_docs.py",
    "test_bad_input.py",
    "test_late_attribution.py",
    "test_ui.py",
    "test_replace_not_upsert.py",
    "test_layers.py",
    "test_portfolio.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))


@pytest.fixture(autouse=True)
def _close_dagster_contexts_with_their_test() -> Iterator[None]:
    """Dagster's schedule and sensor contexts built with resources hold an ephemeral
    instance that closes only when the garbage collector finds them. Closed at a random later
    moment, it resets Dagster's current defs-state storage to that of a disposed instance,
    and whatever loads definitions next fails ("Attempted to resolve undefined
    DagsterInstance weakref"). Collected here, they close with the test that made them."""
    yield
    gc.collect()


@pytest.fixture(scope="session")
def now() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def world() -> World:
    """The demo's accounts with the awkward data real ones have (three-decimal spend, days
    with spend and no impression, days with no delivery at all)."""
    return World(AWKWARD_ACCOUNTS, anchor=NOW.date())


@pytest.fixture
def sandbox(world: World) -> Iterator[SandboxServer]:
    with SandboxServer(world, now=NOW) as server:
        yield server


@pytest.fixture(scope="session")
def demo_clients():
    return load_clients(BUNDLED_CLIENTS)


@pytest.fixture(scope="session")
def catalog(demo_clients) -> Catalog:
    return build_catalog(demo_clients)


def _postgres_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)


def require_postgres() -> sa.Engine:
    """An engine on the test server; a failure in CI when it is unreachable, else a skip."""
    base = _postgres_url()
    engine = sa.create_engine(base)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI and is unreachable at {base}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {base} (set {POSTGRES_URL_ENV})")
    return engine


def postgres_schema_url() -> Iterator[str]:
    """A fresh schema per test, so tests never see each other's rows."""
    base = _postgres_url()
    engine = require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        # The schema doubles as the application name, so a test can find its own backends.
        yield f"{base}?options=-csearch_path%3D{schema}&application_name={schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    else:
        yield from postgres_schema_url()


def make_instance(folder: Path) -> DagsterInstance:
    """The instance of runs made in this test's own process: Dagster's ephemeral instance,
    runs and events in an in-memory SQLite database, artifacts under `folder`. The on-disk
    SQLite storage opens a database file and commits to disk for every event, which took half
    the CPU of a backfill (`test_idempotency.py` on SQLite: 79 s on disk, 43 s in memory).
    The instance as users keep it is tested where it is shared: by the command line and the
    deployment (their own processes) and the UI (`home_instance`)."""
    folder.mkdir(parents=True, exist_ok=True)
    return DagsterInstance.ephemeral(str(folder), settings={"telemetry": {"enabled": False}})


def home_instance(folder: Path) -> DagsterInstance:
    """An instance on disk in `folder`, as a DAGSTER_HOME holds it for other processes."""
    folder.mkdir(parents=True, exist_ok=True)
    return DagsterInstance.local_temp(str(folder), overrides={"telemetry": {"enabled": False}})


def make_resources(
    sandbox_url: str, warehouse_url: str, now: datetime = NOW, **meta_settings
) -> dict:
    """The pipeline's resources, its clock pinned at `now` (give the sandbox the same)."""
    return {
        "meta": MetaAdsResource(
            access_token=SANDBOX_TOKEN,
            base_url=sandbox_url,
            **{
                "backoff_base_seconds": 0.05,
                "backoff_max_seconds": 0.2,
                "report_poll_seconds": 0.05,
                "throttle_wait_seconds": 0.5,
                **meta_settings,
            },
        ),
        "warehouse": WarehouseResource(url=warehouse_url),
        "clock": ClockResource(as_of=now.isoformat()),
        "checks": CheckSettings(),
        "alerts": AlertNotifier(),
        "fx": FxResource(rates_url=f"{sandbox_url}{FEED_PATH}"),
    }


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    with make_instance(tmp_path / "dagster_home") as instance:
        yield instance


@pytest.fixture
def resources(sandbox: SandboxServer, warehouse_url: str) -> dict:
    return make_resources(sandbox.url, warehouse_url)


@pytest.fixture
def defs(catalog: Catalog, resources: dict):
    return build_definitions(catalog, resources)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_warehouse_url(request, tmp_path_factory) -> Iterator[str]:
    """Like `warehouse_url`, shared by the tests of one module."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('warehouse') / 'warehouse.sqlite'}"
    else:
        yield from postgres_schema_url()
