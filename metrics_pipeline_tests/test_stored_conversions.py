"""Conversion metrics stored with the raw rows never go stale.

Each insight row keeps the conversion metrics computed when it was stored, with the
fingerprint of the client's mapping. Editing the mapping, or a warehouse from before the
metrics were stored, must still give daily KPIs that follow the mapping in force, exactly
as the sandbox's ground truth says.
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from dagster import AssetKey

from metrics_pipeline.catalog import build_catalog
from metrics_pipeline.config.clients import parse_clients
from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import DAILY_ONLY, materialize_window, run_stage
from metrics_pipeline.sandbox.ground_truth import day_truth
from metrics_pipeline.sandbox.world import World
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline.warehouse.schema import ADDED_COLUMNS, SCHEMA_VERSION
from metrics_pipeline_tests.conftest import BUNDLED_CLIENTS, make_resources
from metrics_pipeline_tests.helpers import local_today
from metrics_pipeline_tests.truth import normal_expected, stored_kpis

CLIENT = "canyon_lodge"
ACCOUNT = "act_1000000002"
# The demo file counts this client's calls as the native event PLUS a custom conversion.
SUMMED_CALLS = """    conversions:
      # This account tracks calls as a custom conversion as well as the native event.
      click_to_call:
        action_types: [click_to_call_native_call_placed, offsite_conversion.custom.710001]
        combine: sum
"""


def _days(world: World, now) -> list[date]:
    today = local_today(world, ACCOUNT, now)
    return [today - timedelta(days=n) for n in range(6, 1, -1)]


def _native_calls(world: World, day: date, today: date) -> int:
    """Calls counted by the native event alone (the default mapping), from true events."""
    account = world.account(ACCOUNT)
    return sum(
        events.calls_native
        for ad in account.ads
        for country in account.spec.countries
        if (events := world.events(ACCOUNT, ad, day, country, 0, today)) is not None
    )


def _daily(warehouse: WarehouseResource, days: list[date]) -> dict[date, dict]:
    frame = warehouse.read("daily_kpi_data", {"client_id": CLIENT, "date": days})
    rows = {row["date"]: row for row in frame.to_dict("records")}
    assert sorted(rows) == days
    return rows


def _derive_daily(defs, instance, days: list[date]) -> None:
    outcome = run_stage(
        defs, instance, "daily", DAILY_ONLY, f"{CLIENT}|{days[0]}", f"{CLIENT}|{days[-1]}",
        {}, "ERROR", checks_of=[AssetKey("meta_insights")],
    )  # fmt: skip
    assert outcome.success, outcome.errors


def test_an_edited_mapping_applies_to_rows_stored_under_the_old_one(
    world, now, sandbox, warehouse_url, instance
):
    days = _days(world, now)
    today = local_today(world, ACCOUNT, now)
    summed = build_catalog(parse_clients(BUNDLED_CLIENTS.read_text()))
    defs = build_definitions(summed, make_resources(sandbox.url, warehouse_url))
    outcome = materialize_window(defs, summed, instance, days[0], days[-1], [CLIENT])
    assert outcome.success, outcome.errors
    warehouse = WarehouseResource(url=warehouse_url)
    truths = {d: day_truth(world, ACCOUNT, d, 0, today) for d in days}
    for day, row in _daily(warehouse, days).items():
        assert stored_kpis(row) == normal_expected(truths[day]), day

    # The same file without the custom conversion: calls are the native event only.
    text = BUNDLED_CLIENTS.read_text()
    assert SUMMED_CALLS in text
    native = build_catalog(parse_clients(text.replace(SUMMED_CALLS, "")))
    native_defs = build_definitions(native, make_resources(sandbox.url, warehouse_url))
    expected, told_apart = {}, 0
    for day, truth in truths.items():
        calls = _native_calls(world, day, today)
        told_apart += calls < truth.click_to_call
        truth.click_to_call = calls
        expected[day] = normal_expected(truth)  # total_conversions and CPA follow
    assert told_apart, "the window must have days with custom calls to tell the mappings apart"

    # Daily KPIs derived again without collecting: the stored rows carry the old mapping.
    _derive_daily(native_defs, instance, days)
    for day, row in _daily(warehouse, days).items():
        assert stored_kpis(row) == expected[day], day

    # Collected again under the new mapping, the stored metrics are summed directly.
    outcome = materialize_window(native_defs, native, instance, days[0], days[-1], [CLIENT])
    assert outcome.success, outcome.errors
    for day, row in _daily(warehouse, days).items():
        assert stored_kpis(row) == expected[day], day


def _as_version_1(url: str) -> None:
    """The warehouse as schema version 1 wrote it: no stored conversion metrics."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for table, columns in ADDED_COLUMNS[2].items():
            for column in columns:
                connection.execute(sa.text(f'ALTER TABLE "{table}" DROP COLUMN "{column}"'))
        connection.execute(sa.text("UPDATE warehouse_schema SET version = 1"))
    engine.dispose()


def _another_engine(url: str) -> str:
    """The same database under a URL no engine has been made for yet."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        return f"sqlite:///{path.rsplit('/', 1)[0]}/./{path.rsplit('/', 1)[1]}"
    return f"{url}&connect_timeout=30"


def test_a_version_1_warehouse_is_migrated_and_its_rows_still_count(
    world, now, sandbox, warehouse_url, instance, catalog
):
    days = _days(world, now)
    today = local_today(world, ACCOUNT, now)
    defs = build_definitions(catalog, make_resources(sandbox.url, warehouse_url))
    outcome = materialize_window(defs, catalog, instance, days[0], days[-1], [CLIENT])
    assert outcome.success, outcome.errors
    _as_version_1(warehouse_url)

    migrated_url = _another_engine(warehouse_url)
    migrated = WarehouseResource(url=migrated_url)
    migrated.ensure_schema()  # what the next run does as it starts: migrate
    raw = migrated.read("meta_insights", {"client_id": CLIENT})
    assert len(raw) > 0
    assert raw["conversions_fingerprint"].isna().all()  # columns added, old rows untouched
    engine = sa.create_engine(migrated_url)
    with engine.connect() as connection:
        version = connection.execute(sa.text("SELECT version FROM warehouse_schema")).scalar()
    engine.dispose()
    assert version == SCHEMA_VERSION == 3

    _derive_daily(
        build_definitions(catalog, make_resources(sandbox.url, migrated_url)), instance, days
    )
    for day, row in _daily(migrated, days).items():
        assert stored_kpis(row) == normal_expected(day_truth(world, ACCOUNT, day, 0, today)), day
