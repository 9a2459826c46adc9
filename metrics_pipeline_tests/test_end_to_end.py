"""The whole graph on the sandbox over HTTP, a real Dagster instance, SQLite and PostgreSQL.

Every stored number is compared with the sandbox's ground truth, computed from its true
events and not from the pipeline's code.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.domain.periods import month_of, previous_month, week_of, week_start
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.ground_truth import day_truth, period_truth
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline.sandbox.world import DELETED_AD_STOPS_DAYS_BEFORE
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import NOW, make_instance, make_resources
from metrics_pipeline_tests.helpers import campaign_spend, days_between, local_today, snapshot
from metrics_pipeline_tests.truth import normal_expected, stored_kpis


@pytest.fixture(scope="module")
def window(now) -> tuple[date, date]:
    # From a week before a month that does not begin on a Monday (so a complete week
    # crosses a month boundary) and at least the whole previous month, to UTC tomorrow
    # (clients ahead of UTC already live in it).
    first = previous_month(now.date()).start
    while first.weekday() == 0:
        first = previous_month(first).start
    return first - timedelta(days=7), now.date() + timedelta(days=1)


@pytest.fixture(scope="module")
def stack(world, catalog, window, module_warehouse_url, tmp_path_factory):
    """One materialised window per warehouse backend, shared by this module's tests."""
    with (
        SandboxServer(world, now=NOW) as sandbox,
        make_instance(tmp_path_factory.mktemp("dagster_home")) as instance,
    ):
        defs = build_definitions(catalog, make_resources(sandbox.url, module_warehouse_url))
        outcome = materialize_window(defs, catalog, instance, *window)
        assert outcome.success, outcome.errors
        yield defs, instance, WarehouseResource(url=module_warehouse_url)


@pytest.fixture(scope="module")
def materialized(stack) -> WarehouseResource:
    return stack[2]


def _truth(world, account_id, days, today, revision=0):
    return period_truth(world, account_id, days, revision, today)


def test_daily_kpis_equal_ground_truth_for_every_client_and_day(
    materialized, catalog, world, now, window
):
    for client in catalog.clients:
        today = local_today(world, client.meta_ad_account_id, now)
        daily = materialized.read("daily_kpi_data", {"client_id": client.id}, ["date"])
        assert list(daily["date"]) == days_between(window[0], today), client.id
        for row in daily.to_dict("records"):
            truth = day_truth(world, client.meta_ad_account_id, row["date"], 0, today)
            assert stored_kpis(row) == normal_expected(truth), (client.id, row["date"])
            assert campaign_spend(row["campaign_data"]) == {
                cid: t.spend for cid, t in truth.campaigns.items()
            }
            assert row["platform"] == "meta"
            assert row["data_source"] == "meta_insights"
            assert row["currency"] == world.account(client.meta_ad_account_id).spec.currency


def test_far_apart_timezones_use_each_account_local_days(materialized, world, now):
    auckland = local_today(world, "act_1000000001", now)
    los_angeles = local_today(world, "act_1000000002", now)
    # 21 hours apart: for all but three hours of each UTC day they live on different dates.
    assert (auckland - los_angeles).days in (0, 1)
    for client_id, today in (("harbour_view_hotel", auckland), ("canyon_lodge", los_angeles)):
        daily = materialized.read("daily_kpi_data", {"client_id": client_id})
        assert max(daily["date"]) == today


def test_deleted_and_archived_objects_keep_their_spend(materialized, world, now, window):
    account = world.account("act_1000000001")
    deleted = next(ad for ad in account.ads if ad.effective_status == "DELETED")
    archived = [ad for ad in account.ads if ad.effective_status == "ARCHIVED"]
    today = local_today(world, "act_1000000001", now)
    insights = materialized.read("meta_insights", {"client_id": "harbour_view_hotel"})
    for ad in (deleted, *archived):
        expected_spend, expected_rows = Decimal("0.00"), set()
        for day in days_between(window[0], today):
            for country in account.spec.countries:
                events = world.events("act_1000000001", ad, day, country, 0, today)
                if events is not None:
                    expected_spend += Decimal(events.spend_minor) / 100
                    expected_rows.add((day, country))
        stored = insights[insights["ad_id"] == ad.id]
        assert expected_spend > 0, "the sandbox must give the hidden ad spend in the window"
        assert stored["spend"].sum() == expected_spend, ad.id
        assert set(zip(stored["date"], stored["country"], strict=True)) == expected_rows
    # The deleted ad stopped spending before the window's end, yet its days are all there.
    assert max(insights[insights["ad_id"] == deleted.id]["date"]) <= (
        world.anchor - timedelta(days=DELETED_AD_STOPS_DAYS_BEFORE)
    )
    objects = materialized.read("meta_ad_objects", {"client_id": "harbour_view_hotel"})
    assert set(objects["effective_status"]) >= {"DELETED", "ARCHIVED", "ACTIVE"}
    assert len(objects) == len(account.ads) + len(account.adsets) + len(account.campaigns)
    budgets = objects[objects["object_id"] == account.campaigns[0].id]["daily_budget"]
    assert budgets.iloc[0] == Decimal(account.campaigns[0].daily_budget) / 100


def test_purchase_synonyms_are_counted_once(materialized, world, now):
    insights = materialized.read("meta_insights", {"client_id": "altstadt_apartments"})
    synonyms = {"purchase", "omni_purchase", "offsite_conversion.fb_pixel_purchase"}
    summed_synonyms = sum(
        int(a["value"])
        for text in insights["actions"]
        for a in json.loads(text)
        if a["action_type"] in synonyms
    )
    daily = materialized.read("daily_kpi_data", {"client_id": "altstadt_apartments"})
    today = local_today(world, "act_1000000003", now)
    truth = _truth(world, "act_1000000003", list(daily["date"]), today)
    assert int(daily["reservations"].sum()) == truth.reservations
    # Adding the synonyms up would count each purchase two or three times.
    assert summed_synonyms >= 2 * truth.reservations > 0


def test_weekly_and_monthly_summaries_equal_their_days(materialized, catalog, world, now, window):
    crossing_weeks = 0
    for client in catalog.clients:
        account_id = client.meta_ad_account_id
        today = local_today(world, account_id, now)
        summaries = materialized.read("campaign_summaries", {"client_id": client.id})
        assert set(summaries["summary_type"]) == {"weekly", "monthly"}
        for row in summaries.to_dict("records"):
            period = (week_of if row["summary_type"] == "weekly" else month_of)(row["summary_date"])
            assert row["period_end"] == period.end
            covered = [d for d in period.days() if window[0] <= d <= today]
            truth = _truth(world, account_id, covered, today)
            assert stored_kpis(row) == normal_expected(truth), (client.id, row["summary_date"])
            assert row["days_with_data"] == len(covered)
            assert campaign_spend(row["campaign_data"]) == {
                cid: t.spend for cid, t in truth.campaigns.items()
            }
            if (
                row["summary_type"] == "weekly"
                and period.start.month != period.end.month
                and len(covered) == 7
            ):
                crossing_weeks += 1
        weekly_starts = sorted(summaries[summaries["summary_type"] == "weekly"]["summary_date"])
        assert all(d.weekday() == 0 for d in weekly_starts)
        assert previous_month(now.date()).start in set(
            summaries[summaries["summary_type"] == "monthly"]["summary_date"]
        )
    assert crossing_weeks >= len(catalog.clients)


def test_current_week_cache_is_week_to_date_with_today_provisional(
    materialized, catalog, world, now
):
    for client in catalog.clients:
        today = local_today(world, client.meta_ad_account_id, now)
        cache = materialized.read("current_week_cache", {"client_id": client.id})
        assert len(cache) == 1
        row = cache.iloc[0].to_dict()
        days = days_between(week_start(today), today)
        truth = _truth(world, client.meta_ad_account_id, days, today)
        assert stored_kpis(row) == normal_expected(truth), client.id
        assert (row["date_range_start"], row["date_range_end"]) == (days[0], today)
        assert bool(row["is_provisional"]) is True
        assert row["provisional_date"] == today
        assert row["days_with_data"] == len(days)


def test_rollups_equal_their_windows_and_pace_against_budget(materialized, catalog, world, now):
    for client in catalog.clients:
        today = local_today(world, client.meta_ad_account_id, now)
        rollups = materialized.read("client_kpi_rollups", {"client_id": client.id})
        rows = {r["rollup_window"]: r for r in rollups.to_dict("records")}
        month = month_of(today)
        expected_windows = {
            "month_to_date": (month.start, today - timedelta(days=1)),
            "last_7_days": (today - timedelta(days=7), today - timedelta(days=1)),
            "last_14_days": (today - timedelta(days=14), today - timedelta(days=1)),
            "last_30_days": (today - timedelta(days=30), today - timedelta(days=1)),
            "previous_month": (previous_month(today).start, previous_month(today).end),
        }
        assert set(rows) == set(expected_windows)
        for name, (first, last) in expected_windows.items():
            truth = _truth(world, client.meta_ad_account_id, days_between(first, last), today)
            assert stored_kpis(rows[name]) == normal_expected(truth), (client.id, name)
        mtd = rows["month_to_date"]
        elapsed = (today - month.start).days
        spend = _truth(
            world,
            client.meta_ad_account_id,
            days_between(month.start, today - timedelta(days=1)),
            today,
        ).spend
        assert mtd["days_elapsed"] == elapsed
        if elapsed:
            assert mtd["projected_spend"] == (spend * month.length / elapsed).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
        assert Decimal(mtd["budget_progress_pct"]).quantize(Decimal("0.0001")) == (
            spend * 100 / client.monthly_budget
        ).quantize(Decimal("0.0001"))


def test_rematerializing_changes_nothing(stack, catalog, materialized, window):
    defs, instance, _ = stack
    before = snapshot(materialized)
    outcome = materialize_window(defs, catalog, instance, *window)
    assert outcome.success, outcome.errors
    assert snapshot(materialized) == before
