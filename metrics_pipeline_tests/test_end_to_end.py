"""The whole graph on the sandbox over HTTP, a real Dagster instance, SQLite and PostgreSQL.

Every stored number is compared with the sandbox's ground truth, computed from its true
events and not from the pipeline's code; weeks, months and rollup windows come from the
test's own calendar (`helpers`). The graph runs at several fixed instants chosen where
local days, weeks and months part from UTC ones, never at the real time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
import pytest
from dagster import DagsterInstance, Definitions

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.ground_truth import DayTruth, day_truth, period_truth
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline.sandbox.world import AWKWARD_ACCOUNTS, PURCHASE_PRIORITY, World
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import make_instance, make_resources, postgres_schema_url
from metrics_pipeline_tests.helpers import (
    campaign_spend,
    complete_months,
    complete_weeks,
    days_between,
    local_today,
    monday_of,
    month_bounds,
    rollup_windows,
    snapshot,
)
from metrics_pipeline_tests.truth import normal_expected, stored_kpis

AUCKLAND, LOS_ANGELES, BERLIN, TOKYO = (
    "act_1000000001",
    "act_1000000002",
    "act_1000000003",
    "act_1000000004",
)


@dataclass(frozen=True)
class Instant:
    name: str
    at: datetime
    # Each account's local date at `at`, written out by hand from the zones' offsets.
    local_dates: dict[str, date]
    auckland_ahead_days: int  # Auckland's local date minus Los Angeles'
    days_before: int = 14  # the window starts this many days before the UTC date


INSTANTS = {
    i.name: i
    for i in (
        # Morning in UTC: every account lives on the same date.
        Instant(
            "utc-0900",
            datetime(2026, 11, 18, 9, 0, tzinfo=UTC),
            dict.fromkeys((AUCKLAND, LOS_ANGELES, BERLIN, TOKYO), date(2026, 11, 18)),
            0,
        ),
        # Evening in UTC: Auckland (09:00) and Tokyo (05:00) already live on Thursday.
        Instant(
            "utc-2000",
            datetime(2026, 11, 18, 20, 0, tzinfo=UTC),
            {
                AUCKLAND: date(2026, 11, 19),
                LOS_ANGELES: date(2026, 11, 18),
                BERLIN: date(2026, 11, 18),
                TOKYO: date(2026, 11, 19),
            },
            1,
        ),
        # Sunday 23:30 in Los Angeles: its week is ending, UTC's next week has begun.
        Instant(
            "la-sunday-2330",
            datetime(2026, 11, 23, 7, 30, tzinfo=UTC),
            {
                AUCKLAND: date(2026, 11, 23),
                LOS_ANGELES: date(2026, 11, 22),
                BERLIN: date(2026, 11, 23),
                TOKYO: date(2026, 11, 23),
            },
            1,
        ),
        # 00:30 on 1 December in Auckland (still 30 November in UTC): no whole day of the
        # month has passed there, November is its previous month. A long window covers it.
        Instant(
            "auckland-first-0030",
            datetime(2026, 11, 30, 11, 30, tzinfo=UTC),
            {
                AUCKLAND: date(2026, 12, 1),
                LOS_ANGELES: date(2026, 11, 30),
                BERLIN: date(2026, 11, 30),
                TOKYO: date(2026, 11, 30),
            },
            1,
            days_before=31,
        ),
        # 23:30 on 25 October in Berlin, the 25-hour day summer time ended (CEST would make
        # it Monday); Los Angeles is still on summer time, Auckland and Tokyo on Monday.
        Instant(
            "berlin-dst-end-2330",
            datetime(2026, 10, 25, 22, 30, tzinfo=UTC),
            {
                AUCKLAND: date(2026, 10, 26),
                LOS_ANGELES: date(2026, 10, 25),
                BERLIN: date(2026, 10, 25),
                TOKYO: date(2026, 10, 26),
            },
            1,
        ),
    )
}
# Every instant on SQLite; PostgreSQL at the two that part most from UTC, to keep time.
CASES = [(name, "sqlite") for name in INSTANTS] + [
    ("utc-2000", "postgresql"),
    ("auckland-first-0030", "postgresql"),
]
# Re-running a whole window costs as much as the first run: once per backend.
REMATERIALIZED = [("auckland-first-0030", "sqlite"), ("utc-2000", "postgresql")]


@dataclass
class Stack:
    instant: Instant
    world: World
    catalog: Catalog
    window: tuple[date, date]
    defs: Definitions
    instance: DagsterInstance
    warehouse: WarehouseResource

    @property
    def now(self) -> datetime:
        return self.instant.at

    def today(self, account_id: str) -> date:
        return local_today(self.world, account_id, self.now)

    def truth(self, account_id: str, days: list[date]) -> DayTruth:
        return period_truth(self.world, account_id, days, 0, self.today(account_id))

    def covered(self, account_id: str, first: date, last: date) -> list[date]:
        """The days of [first, last] that the window materialised for the account."""
        return days_between(max(first, self.window[0]), min(last, self.today(account_id)))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stack" in metafunc.fixturenames:
        cases = REMATERIALIZED if metafunc.function.__name__ == "test_rematerializing" else CASES
        metafunc.parametrize(
            "stack", cases, indirect=True, scope="module", ids=[f"{i}-{b}" for i, b in cases]
        )


@pytest.fixture(scope="module")
def stack(request, catalog, tmp_path_factory) -> Iterator[Stack]:
    """One materialised window per instant and backend, shared by this module's tests."""
    instant, backend = INSTANTS[request.param[0]], request.param[1]
    utc_day = instant.at.date()
    window = (utc_day - timedelta(days=instant.days_before), utc_day + timedelta(days=1))
    world = World(AWKWARD_ACCOUNTS, anchor=utc_day)
    if backend == "sqlite":
        database = nullcontext(f"sqlite:///{tmp_path_factory.mktemp('warehouse') / 'w.sqlite'}")
    else:
        database = contextmanager(postgres_schema_url)()
    with (
        database as url,
        SandboxServer(world, now=instant.at) as sandbox,
        make_instance(tmp_path_factory.mktemp("dagster_home")) as instance,
    ):
        defs = build_definitions(catalog, make_resources(sandbox.url, url, now=instant.at))
        outcome = materialize_window(defs, catalog, instance, *window)
        assert outcome.success, outcome.errors
        yield Stack(instant, world, catalog, window, defs, instance, WarehouseResource(url=url))


def _utc(value: object) -> datetime:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.to_pydatetime()


def _percent(part: Decimal | int, whole: Decimal | int | None) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.000001"), ROUND_HALF_UP)


def test_each_account_lives_on_its_own_local_date(stack: Stack):
    expected = stack.instant.local_dates
    for account_id, day in expected.items():
        assert stack.today(account_id) == day, account_id
    # 21 hours apart: the same date for three hours of a UTC day, else a day apart.
    ahead = (stack.today(AUCKLAND) - stack.today(LOS_ANGELES)).days
    assert ahead == stack.instant.auckland_ahead_days
    for client in stack.catalog.clients:
        daily = stack.warehouse.read("daily_kpi_data", {"client_id": client.id})
        assert max(daily["date"]) == expected[client.meta_ad_account_id], client.id


def test_daily_kpis_equal_ground_truth_for_every_client_and_day(stack: Stack):
    for client in stack.catalog.clients:
        account_id = client.meta_ad_account_id
        today = stack.today(account_id)
        daily = stack.warehouse.read("daily_kpi_data", {"client_id": client.id}, ["date"])
        assert list(daily["date"]) == days_between(stack.window[0], today), client.id
        for row in daily.to_dict("records"):
            truth = day_truth(stack.world, account_id, row["date"], 0, today)
            assert stored_kpis(row) == normal_expected(truth), (client.id, row["date"])
            assert campaign_spend(row["campaign_data"]) == {
                cid: t.spend for cid, t in truth.campaigns.items()
            }
            assert row["platform"] == "meta"
            assert row["data_source"] == "meta_insights"
            assert row["currency"] == stack.world.account(account_id).spec.currency


def test_awkward_days_are_stored_as_real_accounts_write_them(stack: Stack):
    """Each window holds the awkward data (see AWKWARD_ACCOUNTS), and the exact comparison
    above covers it; here, that it is really there and what its rows look like."""
    insights = stack.warehouse.read("meta_insights", {"client_id": "altstadt_apartments"})
    ads = stack.world.account(BERLIN).ads
    today = stack.today(BERLIN)
    digits = {
        stack.world.events(BERLIN, ad, day, country, 0, today).spend_sub
        for ad in ads
        for day in days_between(stack.window[0], today)
        for country in stack.world.account(BERLIN).spec.countries
        if stack.world.events(BERLIN, ad, day, country, 0, today) is not None
    }
    assert {0, 4, 5, 9} <= digits  # ties (5) and both sides of them were written
    assert len(insights) > 0
    # Spend without an impression: a day whose every ratio over impressions or clicks is
    # NULL, still stored with its spend.
    daily = stack.warehouse.read("daily_kpi_data", {"client_id": "altstadt_apartments"})
    unseen = daily[daily["date"].map(lambda d: d.toordinal() % 5 == 0)]
    assert len(unseen) >= 1
    for row in unseen.to_dict("records"):
        assert row["total_impressions"] == 0 and row["total_clicks"] == 0, row["date"]
        assert _number(row["total_spend"]) > 0, row["date"]
        assert [_number(row[c]) for c in ("average_ctr", "average_cpc", "average_cpa")] == [
            None,
            None,
            None,
        ]
    # A day with no delivery at all: a row of zeros, so the day counts as collected.
    daily = stack.warehouse.read("daily_kpi_data", {"client_id": "sakura_ryokan"})
    quiet = daily[daily["date"].map(lambda d: d.toordinal() % 6 == 0)]
    assert len(quiet) >= 1
    for row in quiet.to_dict("records"):
        assert (_number(row["total_spend"]), row["total_impressions"]) == (0, 0), row["date"]
        assert row["campaign_data"] in ("[]", "{}"), row["date"]
    stored_days = stack.warehouse.read("meta_insights", {"client_id": "sakura_ryokan"})["date"]
    assert not set(quiet["date"]) & set(stored_days)


def test_deleted_and_archived_objects_keep_their_spend(stack: Stack):
    world, window = stack.world, stack.window
    account = world.account(AUCKLAND)
    deleted = next(ad for ad in account.ads if ad.effective_status == "DELETED")
    archived = [ad for ad in account.ads if ad.effective_status == "ARCHIVED"]
    today = stack.today(AUCKLAND)
    insights = stack.warehouse.read("meta_insights", {"client_id": "harbour_view_hotel"})
    for ad in (deleted, *archived):
        expected_spend, expected_rows = Decimal("0.00"), set()
        for day in days_between(window[0], today):
            for country in account.spec.countries:
                events = world.events(AUCKLAND, ad, day, country, 0, today)
                if events is not None:
                    expected_spend += Decimal(events.spend_minor) / 100
                    expected_rows.add((day, country))
        stored = insights[insights["ad_id"] == ad.id]
        # A hidden ad spends in the window exactly when the window reaches its last day.
        assert (expected_spend > 0) == (window[0] <= ad.last_day), ad.id
        assert Decimal(stored["spend"].sum()) == expected_spend, ad.id
        assert set(zip(stored["date"], stored["country"], strict=True)) == expected_rows
    # Each window reaches the deleted ad's last days; the long one the archived ads' too.
    assert window[0] <= deleted.last_day < today
    assert (window[0] <= archived[0].last_day) == (stack.instant.days_before >= 30)
    assert max(insights[insights["ad_id"] == deleted.id]["date"]) == deleted.last_day
    objects = stack.warehouse.read("meta_ad_objects", {"client_id": "harbour_view_hotel"})
    assert set(objects["effective_status"]) >= {"DELETED", "ARCHIVED", "ACTIVE"}
    assert len(objects) == len(account.ads) + len(account.adsets) + len(account.campaigns)
    budgets = objects[objects["object_id"] == account.campaigns[0].id]["daily_budget"]
    assert budgets.iloc[0] == Decimal(account.campaigns[0].daily_budget) / 100


def test_purchase_synonyms_are_read_in_the_clients_file_order(stack: Stack):
    insights = stack.warehouse.read("meta_insights", {"client_id": "altstadt_apartments"})
    disagreeing_rows = 0
    for text in insights["actions"]:
        found = {
            a["action_type"]: int(a["value"])
            for a in json.loads(text)
            if a["action_type"] in PURCHASE_PRIORITY
        }
        disagreeing_rows += len(set(found.values())) > 1
    # The sandbox reports the synonyms with different counts, so their order matters.
    assert disagreeing_rows > 0
    daily = stack.warehouse.read("daily_kpi_data", {"client_id": "altstadt_apartments"})
    truth = stack.truth(BERLIN, list(daily["date"]))
    assert truth.reservations > 0
    assert int(daily["reservations"].sum()) == truth.reservations
    assert Decimal(str(daily["reservation_value"].sum())).quantize(Decimal("0.01")) == (
        truth.reservation_value
    )


def test_weekly_and_monthly_summaries_equal_their_days(stack: Stack):
    for client in stack.catalog.clients:
        account_id = client.meta_ad_account_id
        summaries = stack.warehouse.read("campaign_summaries", {"client_id": client.id})
        by_type = {
            kind: sorted(summaries[summaries["summary_type"] == kind]["summary_date"])
            for kind in ("weekly", "monthly")
        }
        # Partitions of whole periods only: those that ended (UTC) by the instant.
        assert by_type["weekly"] == complete_weeks(stack.window[0], stack.now), client.id
        assert by_type["monthly"] == complete_months(stack.window[0], stack.now), client.id
        for row in summaries.to_dict("records"):
            start = row["summary_date"]
            if row["summary_type"] == "weekly":
                first, last = monday_of(start), monday_of(start) + timedelta(days=6)
            else:
                first, last = month_bounds(start)
            assert (row["summary_date"], row["period_end"]) == (first, last)
            assert row["days_in_period"] == (last - first).days + 1
            covered = stack.covered(account_id, first, last)
            truth = stack.truth(account_id, covered)
            assert stored_kpis(row) == normal_expected(truth), (client.id, start)
            assert row["days_with_data"] == len(covered)
            assert campaign_spend(row["campaign_data"]) == {
                cid: t.spend for cid, t in truth.campaigns.items()
            }
            assert row["data_source"] == "daily_kpi_data"
            assert row["platform"] == "meta"
            assert row["currency"] == stack.world.account(account_id).spec.currency
            assert _utc(row["updated_at"]) == stack.now


def test_current_week_cache_is_week_to_date_with_today_provisional(stack: Stack):
    for client in stack.catalog.clients:
        account_id = client.meta_ad_account_id
        today = stack.instant.local_dates[account_id]
        cache = stack.warehouse.read("current_week_cache", {"client_id": client.id})
        assert len(cache) == 1
        row = cache.iloc[0].to_dict()
        days = days_between(monday_of(today), today)
        truth = stack.truth(account_id, days)
        assert stored_kpis(row) == normal_expected(truth), client.id
        assert row["week_start"] == days[0]
        assert (row["date_range_start"], row["date_range_end"]) == (days[0], today)
        assert bool(row["is_provisional"]) is True
        assert row["provisional_date"] == today
        assert row["days_with_data"] == len(days)
        assert row["platform"] == "meta"
        assert row["currency"] == stack.world.account(account_id).spec.currency
        assert campaign_spend(row["campaign_data"]) == {
            cid: t.spend for cid, t in truth.campaigns.items()
        }
        assert _utc(row["last_updated"]) == stack.now


def test_rollups_equal_their_windows_and_pace_against_budget(stack: Stack):
    pacing_columns = (
        "days_elapsed",
        "days_in_month",
        "projected_spend",
        "projected_conversions",
        "projected_reservations",
        "monthly_budget",
        "budget_progress_pct",
        "expected_progress_pct",
        "conversion_target",
        "conversion_progress_pct",
        "reservation_target",
        "reservation_progress_pct",
    )
    for client in stack.catalog.clients:
        account_id = client.meta_ad_account_id
        today = stack.instant.local_dates[account_id]
        currency = stack.world.account(account_id).spec.currency
        rollups = stack.warehouse.read("client_kpi_rollups", {"client_id": client.id})
        rows = {r["rollup_window"]: r for r in rollups.to_dict("records")}
        windows = rollup_windows(today)
        assert set(rows) == set(windows)
        for name, (first, last) in windows.items():
            row = rows[name]
            covered = stack.covered(account_id, first, last)
            truth = stack.truth(account_id, covered)
            assert stored_kpis(row) == normal_expected(truth), (client.id, name)
            assert (row["window_start"], row["window_end"]) == (first, last), (client.id, name)
            assert row["as_of_date"] == today
            assert row["days_with_data"] == len(covered), (client.id, name)
            assert row["currency"] == (currency if covered else None)
            assert row["platform"] == "meta"
            assert _utc(row["updated_at"]) == stack.now
            if name != "month_to_date":
                assert all(_number(row[c]) is None for c in pacing_columns), name

        # Pacing: whole days of the month so far, projected to the month's length.
        month_first, month_last = month_bounds(today)
        elapsed, length = (today - month_first).days, (month_last - month_first).days + 1
        mtd = stack.truth(account_id, stack.covered(account_id, month_first, today - timedelta(1)))
        conversions, reservations = mtd.total_conversions, mtd.reservations
        six = Decimal("0.000001")
        expected = {
            "days_elapsed": elapsed,
            "days_in_month": length,
            "projected_spend": (mtd.spend * length / elapsed).quantize(
                Decimal("0.01"), ROUND_HALF_UP
            )
            if elapsed
            else None,
            "projected_conversions": (Decimal(conversions * length) / elapsed).quantize(
                six, ROUND_HALF_UP
            )
            if elapsed
            else None,
            "projected_reservations": (Decimal(reservations * length) / elapsed).quantize(
                six, ROUND_HALF_UP
            )
            if elapsed
            else None,
            "monthly_budget": client.monthly_budget,
            "budget_progress_pct": _percent(mtd.spend, client.monthly_budget),
            "expected_progress_pct": _percent(elapsed, length),
            "conversion_target": client.targets.conversions,
            "conversion_progress_pct": _percent(conversions, client.targets.conversions),
            "reservation_target": client.targets.reservations,
            "reservation_progress_pct": _percent(reservations, client.targets.reservations),
        }
        stored = {c: _number(rows["month_to_date"][c]) for c in pacing_columns}
        assert stored == {c: _number(v) for c, v in expected.items()}, client.id


def _number(value: object) -> Decimal | None:
    """A stored or expected number in one comparable form (NULL and NaN are None)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return Decimal(str(value)).quantize(Decimal("0.000001"))


def test_rematerializing(stack: Stack):
    """Re-running the same window at the same instant changes nothing stored."""
    before = snapshot(stack.warehouse)
    outcome = materialize_window(stack.defs, stack.catalog, stack.instance, *stack.window)
    assert outcome.success, outcome.errors
    assert snapshot(stack.warehouse) == before
