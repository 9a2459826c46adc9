"""Every store above daily_kpi_data is summed from daily_kpi_data, never from the raw rows.

A stored day is edited after collection so that daily_kpi_data and meta_insights disagree;
the summaries, the current-week cache and the rollups are then materialised again and must
equal the test's own SQL sums of daily_kpi_data.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from dagster import AssetKey

from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import SERVING, materialize_window, run_stage
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline.sandbox.world import World
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import NOW, make_instance, make_resources
from metrics_pipeline_tests.helpers import local_today, monday_of

CLIENT, ACCOUNT = "canyon_lodge", "act_1000000002"
# Whole days, by hand: Los Angeles lives on Wednesday 18 November 2026 at NOW (20:00 UTC).
TODAY = date(2026, 11, 18)
WINDOW = (date(2026, 10, 28), date(2026, 11, 19))  # from October, so a month is complete
# One day in each kind of period: October and its last week, a week of November and the
# last 7/14/30 days and month to date, and today (the current week).
EDITED_DAYS = (date(2026, 10, 30), date(2026, 11, 12), TODAY)
SPEND_ADDED, CLICKS_ADDED, RESERVATIONS_ADDED = Decimal("1000.00"), 11, 7


def _daily_sums(engine: sa.Engine, first: date, last: date) -> dict[str, Decimal]:
    query = sa.text(
        "SELECT SUM(total_spend), SUM(total_clicks), SUM(reservations),"
        " SUM(total_conversions), COUNT(*) FROM daily_kpi_data"
        " WHERE client_id = :client AND date BETWEEN :first AND :last"
    ).bindparams(sa.bindparam("first", type_=sa.Date), sa.bindparam("last", type_=sa.Date))
    with engine.connect() as connection:
        row = connection.execute(query, {"client": CLIENT, "first": first, "last": last}).one()
    spend, clicks, reservations, conversions, days = (Decimal(str(v or 0)) for v in row)
    return {
        "total_spend": spend.quantize(Decimal("0.01")),
        "total_clicks": clicks,
        "reservations": reservations,
        "total_conversions": conversions,
        "days_with_data": days,
        "average_cpc": (spend / clicks).quantize(Decimal("0.000001"), ROUND_HALF_UP),
    }


def _raw_spend(engine: sa.Engine, first: date, last: date) -> Decimal:
    query = sa.text(
        "SELECT SUM(spend) FROM meta_insights"
        " WHERE client_id = :client AND date BETWEEN :first AND :last"
    ).bindparams(sa.bindparam("first", type_=sa.Date), sa.bindparam("last", type_=sa.Date))
    with engine.connect() as connection:
        total = connection.execute(query, {"client": CLIENT, "first": first, "last": last})
        return Decimal(str(total.scalar())).quantize(Decimal("0.01"))


def _stored(row: dict) -> dict[str, Decimal]:
    return {
        "total_spend": Decimal(str(row["total_spend"])).quantize(Decimal("0.01")),
        "total_clicks": Decimal(int(row["total_clicks"])),
        "reservations": Decimal(int(row["reservations"])),
        "total_conversions": Decimal(int(row["total_conversions"])),
        "days_with_data": Decimal(int(row["days_with_data"])),
        "average_cpc": Decimal(str(row["average_cpc"])).quantize(Decimal("0.000001")),
    }


def test_stores_above_daily_follow_daily_kpi_data_not_the_raw_rows(
    catalog, warehouse_url, tmp_path
):
    world = World(anchor=NOW.date())
    assert local_today(world, ACCOUNT, NOW) == TODAY
    with (
        SandboxServer(world, now=NOW) as sandbox,
        make_instance(tmp_path / "dagster_home") as instance,
    ):
        defs = build_definitions(catalog, make_resources(sandbox.url, warehouse_url, now=NOW))
        outcome = materialize_window(defs, catalog, instance, *WINDOW, client_ids=[CLIENT])
        assert outcome.success, outcome.errors
        engine = WarehouseResource(url=warehouse_url).engine
        edit = sa.text(
            "UPDATE daily_kpi_data SET total_spend = total_spend + :spend,"
            " total_clicks = total_clicks + :clicks, reservations = reservations + :res,"
            " total_conversions = total_conversions + :res"
            " WHERE client_id = :client AND date = :day"
        ).bindparams(
            sa.bindparam("day", type_=sa.Date), sa.bindparam("spend", type_=sa.Numeric(18, 2))
        )
        with engine.begin() as connection:
            for day in EDITED_DAYS:
                changed = connection.execute(
                    edit,
                    {
                        "spend": SPEND_ADDED,
                        "clicks": CLICKS_ADDED,
                        "res": RESERVATIONS_ADDED,
                        "client": CLIENT,
                        "day": day,
                    },
                )
                assert changed.rowcount == 1, day

        # The layers above daily again (the layers below would undo the edit).
        weeks = [("weekly", date(2026, 10, 26)), ("weekly", date(2026, 11, 9))]
        stages = [
            (
                f"campaign_summaries/{kind}",
                [AssetKey(["campaign_summaries", kind])],
                f"{CLIENT}|{start}",
            )
            for kind, start in [*weeks, ("monthly", date(2026, 10, 1))]
        ]
        stages.append(("serving", SERVING, CLIENT))
        for name, selection, key in stages:
            stage = run_stage(defs, instance, name, selection, key, key, {}, "WARNING")
            assert stage.success, stage.errors

        warehouse = WarehouseResource(url=warehouse_url)
        summaries = {
            (r["summary_type"], r["summary_date"]): r
            for r in warehouse.read("campaign_summaries", {"client_id": CLIENT}).to_dict("records")
        }
        rollups = {
            r["rollup_window"]: r
            for r in warehouse.read("client_kpi_rollups", {"client_id": CLIENT}).to_dict("records")
        }
        cache = warehouse.read("current_week_cache", {"client_id": CLIENT}).iloc[0].to_dict()
        yesterday = TODAY - timedelta(days=1)
        checked = [
            (
                "week of 26 October",
                summaries["weekly", date(2026, 10, 26)],
                WINDOW[0],
                date(2026, 11, 1),
            ),
            (
                "week of 9 November",
                summaries["weekly", date(2026, 11, 9)],
                date(2026, 11, 9),
                date(2026, 11, 15),
            ),
            ("October", summaries["monthly", date(2026, 10, 1)], WINDOW[0], date(2026, 10, 31)),
            ("current week", cache, monday_of(TODAY), TODAY),
            ("month to date", rollups["month_to_date"], date(2026, 11, 1), yesterday),
            ("last 7 days", rollups["last_7_days"], TODAY - timedelta(days=7), yesterday),
            ("last 30 days", rollups["last_30_days"], WINDOW[0], yesterday),
        ]
        for label, row, first, last in checked:
            expected = _daily_sums(engine, first, last)
            # The edit made the raw rows and the days disagree on this period.
            assert _raw_spend(engine, first, last) != expected["total_spend"], label
            assert _stored(row) == expected, label
