"""A partition write replaces the partition: when Meta re-reports a day with FEWER rows (an
ad's delivery voided, or a whole day's), the rows that are gone disappear from every table.

An upsert would keep the vanished rows, so every check compares the stored values with the
sandbox's ground truth after the removal, summed here, never with the pipeline's own code.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import requests
import sqlalchemy as sa

from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.ground_truth import DayTruth, Totals, day_truth
from metrics_pipeline.sandbox.server import SANDBOX_TOKEN, SandboxServer
from metrics_pipeline.sandbox.world import World
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import NOW, make_instance, make_resources
from metrics_pipeline_tests.helpers import campaign_spend, days_between, local_today
from metrics_pipeline_tests.truth import normal_expected, stored_kpis


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


# A day whose week and month are both complete (UTC), so it has stored summaries.
SUMMARISED_DAY = min(_monday(NOW.date()), NOW.date().replace(day=1)) - timedelta(days=1)
# From that day's Monday to UTC tomorrow (each client's end is its own local today).
START, END = _monday(SUMMARISED_DAY), NOW.date() + timedelta(days=1)


def _month(day: date) -> tuple[date, date]:
    return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _sum(world: World, account_id: str, days: list[date], today: date) -> DayTruth:
    """The truth of `days` added up here, so no summing code of the pipeline is trusted."""
    total = DayTruth()
    for day in days:
        one = day_truth(world, account_id, day, 0, today)
        total.add(one)
        for campaign_id, totals in one.campaigns.items():
            total.campaigns.setdefault(campaign_id, Totals()).add(totals)
    return total


def _raw_rows(engine: sa.Engine, client_id: str, day: date, ad_id: str | None = None) -> int:
    query = "SELECT count(*) FROM meta_insights WHERE client_id = :client AND date = :day"
    params: dict[str, object] = {"client": client_id, "day": day}
    if ad_id is not None:
        query += " AND ad_id = :ad"
        params["ad"] = ad_id
    with engine.connect() as connection:
        return int(connection.execute(sa.text(query), params).scalar() or 0)


def _pick(world: World, catalog, taken: set[str]):
    """A client not yet taken, preferring one whose local yesterday lies in its current week
    (so the cache must change too), when the hour allows it."""
    free = [c for c in catalog.clients if c.id not in taken]
    todays = {c.id: local_today(world, c.meta_ad_account_id, NOW) for c in free}
    client = next((c for c in free if todays[c.id].weekday() > 0), free[0])
    taken.add(client.id)
    return client, todays[client.id]


def _delivering_ad(world: World, account_id: str, day: date, today: date) -> str:
    account = world.account(account_id)
    return next(
        ad.id
        for ad in account.ads
        if any(world.events(account_id, ad, day, c, 0, today) for c in account.spec.countries)
    )


def test_days_re_read_with_fewer_rows_lose_them_in_every_table(tmp_path, catalog, warehouse_url):
    """One client loses one ad's delivery, another a whole day's, each on two days: a
    summarised day (weekly and monthly summaries) and its local yesterday (the cache when
    it is in this week, the trailing rollups). One collection, one re-read."""
    world = World(anchor=NOW.date())  # its own: the removal must not leak into other tests
    warehouse = WarehouseResource(url=warehouse_url)
    taken: set[str] = set()
    cases = {removal: _pick(world, catalog, taken) for removal in ("one_ad", "whole_day")}
    plan: dict[str, dict[date, str | None]] = {}  # client -> day -> ad removed (None: all)
    for removal, (client, today) in cases.items():
        days = [SUMMARISED_DAY, today - timedelta(days=1)]
        account_id = client.meta_ad_account_id
        plan[client.id] = {
            d: _delivering_ad(world, account_id, d, today) if removal == "one_ad" else None
            for d in days
        }
    after: dict[tuple[str, date], DayTruth] = {}
    with (
        SandboxServer(world, now=NOW) as sandbox,
        make_instance(tmp_path / "dagster_home") as instance,
    ):
        defs = build_definitions(catalog, make_resources(sandbox.url, warehouse_url))
        first = materialize_window(defs, catalog, instance, START, END)
        assert first.success, first.errors

        engine = sa.create_engine(warehouse.resolved_url)
        try:
            for removal, (client, today) in cases.items():
                account_id = client.meta_ad_account_id
                for day, ad_id in plan[client.id].items():
                    before = day_truth(world, account_id, day, 0, today)
                    assert _raw_rows(engine, client.id, day) == before.rows
                    removed = _raw_rows(engine, client.id, day, ad_id)
                    assert removed > 0
                    if ad_id:
                        sandbox.remove_delivery(account_id, day, ad_id)
                    else:  # through the control endpoint, as from outside the process
                        change = {"remove_delivery": [{"account": account_id, "day": str(day)}]}
                        response = requests.post(
                            f"{sandbox.url}/__sandbox/state",
                            json=change,
                            headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
                            timeout=10,
                        )
                        response.raise_for_status()
                    truth = after[client.id, day] = day_truth(world, account_id, day, 0, today)
                    # The sandbox's truth moved with it: fewer rows, none for a whole day.
                    assert truth.rows == before.rows - removed
                    assert (truth.rows == 0) == (removal == "whole_day")

            again = materialize_window(defs, catalog, instance, START, END)
            assert again.success, again.errors

            for client_id, removals in plan.items():
                for day, ad_id in removals.items():
                    # The rows Meta no longer reports are gone; the rest of the day is intact.
                    if ad_id:
                        assert _raw_rows(engine, client_id, day, ad_id) == 0, (client_id, day)
                    assert _raw_rows(engine, client_id, day) == after[client_id, day].rows
        finally:
            engine.dispose()

    for client, today in cases.values():
        _assert_derived_tables(warehouse, world, client, today, plan[client.id], after)


def _assert_derived_tables(
    warehouse: WarehouseResource,
    world: World,
    client,
    today: date,
    removals: dict[date, str | None],
    after: dict[tuple[str, date], DayTruth],
) -> None:
    account_id = client.meta_ad_account_id
    collected = days_between(START, today)  # what the warehouse holds for this client
    collections = warehouse.read("meta_insight_collections", {"client_id": client.id})
    logged = dict(zip(collections["date"], collections["row_count"], strict=True))
    for day in removals:
        truth = after[client.id, day]
        assert logged[day] == truth.rows
        daily = warehouse.read("daily_kpi_data", {"client_id": client.id, "date": day})
        assert len(daily) == 1
        row = daily.iloc[0].to_dict()
        assert stored_kpis(row) == normal_expected(truth), (client.id, day)
        assert campaign_spend(row["campaign_data"]) == {
            cid: t.spend for cid, t in truth.campaigns.items()
        }

    # The weekly and monthly summaries holding the summarised day: every day they cover.
    summaries = warehouse.read("campaign_summaries", {"client_id": client.id})
    periods = {
        "weekly": (START, START + timedelta(days=6)),
        "monthly": _month(SUMMARISED_DAY),
    }
    for kind, (first_day, last_day) in periods.items():
        match = summaries[
            (summaries["summary_type"] == kind) & (summaries["summary_date"] == first_day)
        ]
        assert len(match) == 1, (client.id, kind, first_day)
        covered = [d for d in days_between(first_day, last_day) if d in collected]
        truth = _sum(world, account_id, covered, today)
        summary = match.iloc[0].to_dict()
        assert stored_kpis(summary) == normal_expected(truth), (client.id, kind)
        assert campaign_spend(summary["campaign_data"]) == {
            cid: t.spend for cid, t in truth.campaigns.items()
        }

    # The week-to-date cache, today included (it holds yesterday unless today is Monday).
    cache = warehouse.read("current_week_cache", {"client_id": client.id})
    assert len(cache) == 1
    week = days_between(_monday(today), today)
    assert stored_kpis(cache.iloc[0].to_dict()) == normal_expected(
        _sum(world, account_id, week, today)
    )

    # Rollups: whole days before today, as far back as the window reaches.
    month_start = today.replace(day=1)
    previous_end = month_start - timedelta(days=1)
    windows = {
        "month_to_date": (month_start, today - timedelta(days=1)),
        "last_7_days": (today - timedelta(days=7), today - timedelta(days=1)),
        "last_14_days": (today - timedelta(days=14), today - timedelta(days=1)),
        "last_30_days": (today - timedelta(days=30), today - timedelta(days=1)),
        "previous_month": (previous_end.replace(day=1), previous_end),
    }
    records = warehouse.read("client_kpi_rollups", {"client_id": client.id}).to_dict("records")
    rollups = {r["rollup_window"]: r for r in records}
    assert set(rollups) == set(windows)
    for name, (first_day, last_day) in windows.items():
        covered = [d for d in days_between(first_day, last_day) if d in collected]
        truth = _sum(world, account_id, covered, today)
        assert stored_kpis(rollups[name]) == normal_expected(truth), (client.id, name)
