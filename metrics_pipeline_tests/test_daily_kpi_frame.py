"""The daily KPI frame type refuses bad frames, naming client, date, column and value, and
a bad day never reaches a store: not daily_kpi_data when it is built, not the summaries,
cache or rollups when it is read back.

Bad data is put where it could really come from: into the warehouse, never by patching the
pipeline.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import AssetKey, DagsterInstance, Definitions, check_dagster_type, materialize

from metrics_pipeline.partitions import RANGE_END, RANGE_START
from metrics_pipeline.sandbox.ground_truth import day_truth
from metrics_pipeline.steps.frames import DailyKpiFrame, DailyKpiFrameError, refuse_bad_daily_kpis
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.helpers import database_columns, schema_and_rows
from metrics_pipeline_tests.truth import normal_expected, stored_kpis

CLIENT = "altstadt_apartments"
ACCOUNT = "act_1000000003"
TODAY = date(2026, 11, 18)  # NOW in Berlin


def good_row(day: date) -> dict:
    """A daily KPI row as stored, written out here."""
    return {
        "client_id": CLIENT, "date": day, "platform": "meta",
        "total_spend": Decimal("12.50"), "total_impressions": 1000, "total_clicks": 20,
        "total_conversions": 3, "average_ctr": Decimal("2.000000"),
        "average_cpc": Decimal("0.625000"), "click_to_call": 1, "email_contacts": 1,
        "booking_step_1": 4, "booking_step_2": 2, "booking_step_3": 1, "reservations": 1,
        "reservation_value": Decimal("90.00"), "roas": Decimal("7.200000"),
        "cost_per_reservation": Decimal("12.500000"), "average_cpa": Decimal("4.166667"),
        "currency": "EUR", "campaign_data": "[]", "data_source": "meta_insights",
        "collected_at": datetime(2026, 11, 18, 6, 0, tzinfo=UTC),
    }  # fmt: skip


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def test_a_frame_that_meets_the_type_passes_unchanged():
    good = frame(good_row(date(2026, 11, 9)), good_row(date(2026, 11, 10)))
    assert refuse_bad_daily_kpis(good, CLIENT) is good
    assert check_dagster_type(DailyKpiFrame, good).success


def test_a_negative_spend_is_refused_naming_client_date_column_and_value():
    bad = frame(
        good_row(date(2026, 11, 9)),
        {**good_row(date(2026, 11, 10)), "total_spend": Decimal("-3.10")},
    )
    with pytest.raises(DailyKpiFrameError) as refused:
        refuse_bad_daily_kpis(bad, CLIENT)
    assert str(refused.value) == (
        f"client '{CLIENT}', date 2026-11-10, column 'total_spend': -3.10 must not be negative"
    )
    assert refused.value.day == date(2026, 11, 10)
    assert not check_dagster_type(DailyKpiFrame, bad).success


def test_a_missing_column_is_refused_naming_it():
    bad = frame(good_row(date(2026, 11, 9))).drop(columns=["reservations"])
    with pytest.raises(DailyKpiFrameError) as refused:
        refuse_bad_daily_kpis(bad, CLIENT)
    assert str(refused.value) == (
        f"client '{CLIENT}': daily KPI frame without column 'reservations'"
    )
    assert refused.value.day is None
    assert not check_dagster_type(DailyKpiFrame, bad).success


def test_a_null_key_and_a_negative_count_are_refused():
    no_date = frame({**good_row(date(2026, 11, 9)), "date": None})
    with pytest.raises(DailyKpiFrameError, match="column 'date': None must not be NULL"):
        refuse_bad_daily_kpis(no_date, CLIENT)
    clicks = frame({**good_row(date(2026, 11, 9)), "total_clicks": -1})
    with pytest.raises(
        DailyKpiFrameError, match="date 2026-11-09, column 'total_clicks': -1 must not be negative"
    ):
        refuse_bad_daily_kpis(clicks, CLIENT)


# --- through the assets, with a real warehouse ---------------------------------------------


def run(defs: Definitions, instance: DagsterInstance, keys: list[AssetKey], first: str, last: str):
    return materialize(
        [*(defs.assets or [])],
        selection=keys,
        resources=defs.resources,
        instance=instance,
        tags={RANGE_START: first, RANGE_END: last},
        raise_on_error=False,
    )


def failure_text(result, node: str) -> str:
    failure = result.failure_data_for_node(node)
    assert failure is not None, f"{node} did not fail"
    return failure.user_failure_data.description


def execute(url: str, statement: str, **values) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement), values)
    finally:
        engine.dispose()


def test_daily_kpi_data_refuses_a_day_with_negative_spend_and_stores_only_the_good_day(
    defs, instance, warehouse_url, world
):
    good, bad = date(2026, 11, 10), date(2026, 11, 11)
    insights = run(
        defs, instance, [AssetKey("meta_insights")], f"{CLIENT}|{good}", f"{CLIENT}|{bad}"
    )
    assert insights.success
    # Raw rows written wrong by some other hand: every ad's spend on the bad day negative.
    execute(
        warehouse_url,
        "UPDATE meta_insights SET spend = :spend WHERE client_id = :client AND date = :day",
        spend="-1000.00", client=CLIENT, day=str(bad),
    )  # fmt: skip
    rows_that_day = day_truth(world, ACCOUNT, bad, 0, TODAY).rows

    result = run(
        defs, instance, [AssetKey("daily_kpi_data")], f"{CLIENT}|{good}", f"{CLIENT}|{bad}"
    )

    assert not result.success
    total = Decimal(-1000 * rows_that_day).quantize(Decimal("0.01"))
    assert failure_text(result, "daily_kpi_data") == (
        f"1 problem(s): daily_kpi_data: client '{CLIENT}', date {bad}, column 'total_spend': "
        f"{total} must not be negative"
    )
    warehouse = WarehouseResource(url=warehouse_url)
    stored = warehouse.read("daily_kpi_data", {"client_id": CLIENT}).to_dict("records")
    assert [row["date"] for row in stored] == [good]
    assert stored_kpis(stored[0]) == normal_expected(day_truth(world, ACCOUNT, good, 0, TODAY))
    assert set(instance.get_materialized_partitions(AssetKey("daily_kpi_data"))) == {
        f"{CLIENT}|{good}"
    }
    # The asset still shows the table's columns, and the good day's materialization the one
    # row stored.
    (record,) = instance.fetch_materializations(AssetKey("daily_kpi_data"), limit=10).records
    shown = record.asset_materialization.metadata
    key = AssetKey("daily_kpi_data")
    assert schema_and_rows(defs, key, shown) == (
        database_columns(warehouse_url, "daily_kpi_data"),
        1,
    )


# (asset, its partition, its table, the stored day planted with a negative spend)
WEEKLY = AssetKey(["campaign_summaries", "weekly"])
READERS = [
    (WEEKLY, f"{CLIENT}|2026-11-09", "campaign_summaries", date(2026, 11, 12)),
    (AssetKey("current_week_cache"), CLIENT, "current_week_cache", date(2026, 11, 17)),
    (AssetKey("client_kpi_rollups"), CLIENT, "client_kpi_rollups", date(2026, 11, 12)),
]  # fmt: skip


def store_days_and_plant_negative_spend(
    defs, instance, warehouse_url: str, day: date, last_client: str = CLIENT
) -> None:
    """Stores the days from 2026-11-09 of CLIENT (through `last_client` in the clients
    file), then makes CLIENT's `day` spend negative in daily_kpi_data."""
    stored = run(
        defs,
        instance,
        [AssetKey("meta_insights"), AssetKey("daily_kpi_data")],
        f"{CLIENT}|2026-11-09",
        f"{last_client}|{TODAY}",
    )
    assert stored.success
    execute(
        warehouse_url,
        "UPDATE daily_kpi_data SET total_spend = :spend WHERE client_id = :client AND date = :day",
        spend="-5.25", client=CLIENT, day=str(day),
    )  # fmt: skip


def plant_negative_spend_then_build(
    defs, instance, warehouse_url: str, day: date, key: AssetKey, partition: str | None
):
    """`store_days_and_plant_negative_spend` for CLIENT alone, then builds `key` (one
    partition, or the whole asset)."""
    store_days_and_plant_negative_spend(defs, instance, warehouse_url, day)
    return materialize(
        [*(defs.assets or [])],
        selection=[key],
        partition_key=partition,
        resources=defs.resources,
        instance=instance,
        raise_on_error=False,
    )


@pytest.mark.parametrize(("key", "partition", "table", "day"), READERS, ids=[r[2] for r in READERS])
def test_a_negative_stored_day_stops_the_store_above_and_writes_nothing(
    key, partition, table, day, defs, instance, warehouse_url
):
    result = plant_negative_spend_then_build(defs, instance, warehouse_url, day, key, partition)

    assert not result.success
    node = key.to_python_identifier()
    name = "/".join(key.path)
    assert failure_text(result, node) == (
        f"1 problem(s): {name}: client '{CLIENT}', date {day}, column 'total_spend': "
        "-5.25 must not be negative"
    )
    assert WarehouseResource(url=warehouse_url).read(table, {"client_id": CLIENT}).empty
    assert not instance.get_materialized_partitions(key)


def test_a_negative_stored_day_stops_the_portfolio_and_writes_nothing(
    defs, instance, warehouse_url
):
    day = date(2026, 11, 12)
    result = plant_negative_spend_then_build(
        defs, instance, warehouse_url, day, AssetKey("portfolio_kpis"), None
    )

    assert not result.success
    failure = result.failure_data_for_node("portfolio_kpis")
    assert failure is not None
    refusal = failure.error.cause
    assert refusal.cls_name == "DailyKpiFrameError"
    assert refusal.message.strip() == (
        f"metrics_pipeline.steps.frames.DailyKpiFrameError: client '{CLIENT}', date {day}, "
        "column 'total_spend': -5.25 must not be negative"
    )
    assert WarehouseResource(url=warehouse_url).read("portfolio_kpis").empty
    assert not instance.get_latest_materialization_event(AssetKey("portfolio_kpis"))


# The client after CLIENT in the clients file: a range from CLIENT to it holds both. NOW is
# 2026-11-19 in Tokyo, so its week began on 2026-11-16 and its last complete day is 11-18.
NEIGHBOUR = "sakura_ryokan"
# (asset, the range over both clients, its table, CLIENT's day planted with a negative spend,
# the neighbour's row the test sums itself: a column that picks it, and the first and last
# stored day it covers)
BOTH_CLIENTS = [
    (WEEKLY, (f"{CLIENT}|2026-11-09", f"{NEIGHBOUR}|2026-11-09"), "campaign_summaries",
     date(2026, 11, 12), ("summary_date", date(2026, 11, 9)), date(2026, 11, 9),
     date(2026, 11, 15)),
    (AssetKey("current_week_cache"), (CLIENT, NEIGHBOUR), "current_week_cache",
     date(2026, 11, 17), ("week_start", date(2026, 11, 16)), date(2026, 11, 16),
     date(2026, 11, 18)),
    (AssetKey("client_kpi_rollups"), (CLIENT, NEIGHBOUR), "client_kpi_rollups",
     date(2026, 11, 12), ("rollup_window", "last_7_days"), date(2026, 11, 12),
     date(2026, 11, 18)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("key", "keys", "table", "bad_day", "pick", "first", "last"),
    BOTH_CLIENTS,
    ids=[r[2] for r in BOTH_CLIENTS],
)
def test_a_clients_negative_stored_day_holds_back_only_that_client_in_a_run_of_both(
    key, keys, table, bad_day, pick, first, last, defs, instance, warehouse_url
):
    store_days_and_plant_negative_spend(defs, instance, warehouse_url, bad_day, NEIGHBOUR)

    result = run(defs, instance, [key], *keys)

    assert not result.success
    assert failure_text(result, key.to_python_identifier()) == (
        f"1 problem(s): {'/'.join(key.path)}: client '{CLIENT}', date {bad_day}, "
        "column 'total_spend': -5.25 must not be negative"
    )
    warehouse = WarehouseResource(url=warehouse_url)
    assert warehouse.read(table, {"client_id": CLIENT}).empty
    # The neighbour's numbers are its own stored days, summed here.
    engine = sa.create_engine(warehouse_url)
    try:
        with engine.connect() as connection:
            spends = connection.execute(
                sa.text(
                    "SELECT total_spend FROM daily_kpi_data WHERE client_id = :client "
                    "AND date >= :first AND date <= :last"
                ),
                {"client": NEIGHBOUR, "first": str(first), "last": str(last)},
            ).scalars()
            expected = sum((Decimal(str(s)) for s in spends), Decimal("0"))
    finally:
        engine.dispose()
    column, value = pick
    (row,) = warehouse.read(table, {"client_id": NEIGHBOUR, column: value}).to_dict("records")
    assert (Decimal(str(row["total_spend"])), row["currency"]) == (expected, "JPY")
    assert expected > 0
    written = {str(k) for k in instance.get_materialized_partitions(key)}
    assert written == {keys[1]}
