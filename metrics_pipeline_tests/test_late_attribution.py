"""Late attribution reaches every store through the pipeline's own automation.

After a first collection, Meta re-attributes purchases to recent days. The attribution
lookback schedule is evaluated at its last tick before "now" and each of its run requests
is launched as Dagster would launch it (its job, its tags). Then Dagster evaluates the
summaries', cache's and rollups' AutomationConditions, and the runs it requests are
executed. Every store must then hold the new ground truth; before that evaluation the
summaries still held the old numbers.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dagster import (
    AssetKey,
    DagsterInstance,
    Definitions,
    PartitionKeyRange,
    build_schedule_context,
    evaluate_automation_conditions,
)

from metrics_pipeline.clock import ClockResource
from metrics_pipeline.partitions import RANGE_END, RANGE_START
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.ground_truth import Totals, day_truth
from metrics_pipeline.sandbox.world import World
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.helpers import days_between, local_today
from metrics_pipeline_tests.truth import normal_expected, stored_kpis

LOOKBACK_SCHEDULE = "attribution_lookback_schedule"
ACCOUNTS = {
    "harbour_view_hotel": "act_1000000001",
    "canyon_lodge": "act_1000000002",
    "altstadt_apartments": "act_1000000003",
    "sakura_ryokan": "act_1000000004",
}
WEEKLY = AssetKey(["campaign_summaries", "weekly"])
MONTHLY = AssetKey(["campaign_summaries", "monthly"])
CACHE = AssetKey("current_week_cache")
ROLLUPS = AssetKey("client_kpi_rollups")


def last_lookback_tick(now: datetime) -> datetime:
    """The schedule's latest tick (minute 35 of an hour) at or before `now`."""
    tick = now.replace(minute=35, second=0, microsecond=0)
    return tick if tick <= now else tick - timedelta(hours=1)


def expected_rereads(world: World, tick: datetime) -> dict[str, tuple[date, date]]:
    """Per client, the days the lookback re-reads at `tick`: the 28 days before its local
    yesterday, once two hours of its local today have passed (else nothing)."""
    rereads = {}
    for client_id, account_id in ACCOUNTS.items():
        local = tick.astimezone(ZoneInfo(world.account(account_id).spec.timezone))
        if local.hour >= 2:
            yesterday = local.date() - timedelta(days=1)
            rereads[client_id] = (yesterday - timedelta(days=28), yesterday - timedelta(days=1))
    return rereads


def sum_truth(
    world: World, account_id: str, days: list[date], revision_of: dict[date, int], today: date
) -> Totals:
    """The ground truth of the stored days among `days`, each at the revision it was read."""
    total = Totals()
    for day in days:
        if day in revision_of:
            total.add(day_truth(world, account_id, day, revision_of[day], today))
    return total


def week_days(monday: date) -> list[date]:
    return days_between(monday, monday + timedelta(days=6))


def mondays_overlapping(first: date, last: date) -> list[date]:
    monday = first - timedelta(days=first.weekday())
    return [monday + timedelta(weeks=n) for n in range((last - monday).days // 7 + 1)]


def month_days(first: date) -> list[date]:
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return days_between(first, following - timedelta(days=1))


def key_ranges(partition_keys: set[str]) -> list[tuple[str, str]]:
    """Requested partitions -> (first, last) key ranges: one per client for weeks or months
    (the summaries' backfill policy is a single run), one per key for client partitions."""
    by_client: dict[str, list[str]] = defaultdict(list)
    for key in partition_keys:
        client, _, period = key.partition("|")
        by_client[client].append(period)
    ranges = []
    for client, periods in sorted(by_client.items()):
        if periods == [""]:
            ranges.append((client, client))
        else:
            ranges.append((f"{client}|{min(periods)}", f"{client}|{max(periods)}"))
    return ranges


def execute_requested(defs: Definitions, instance: DagsterInstance, result) -> None:
    """Launch what the automation evaluation requested, one ranged run per asset and client."""
    job = defs.resolve_implicit_global_asset_job_def()
    for key in (WEEKLY, MONTHLY, CACHE, ROLLUPS):
        requested = result.get_requested_partitions(key)
        partitions = defs.resolve_assets_def(key).partitions_def
        for first, last in key_ranges(requested):
            # A range runs exactly the requested partitions, nothing in between.
            covered = partitions.get_partition_keys_in_range(PartitionKeyRange(first, last))
            assert set(covered) <= requested, (key, first, last)
            run = job.execute_in_process(
                instance=instance,
                asset_selection=[key],
                tags={RANGE_START: first, RANGE_END: last},
                raise_on_error=False,
            )
            assert run.success, (key, first, last)


def test_lookback_schedule_and_automation_conditions_carry_late_attribution(
    defs, catalog, instance, sandbox, world, now, warehouse_url
):
    warehouse = WarehouseResource(url=warehouse_url)
    tick = last_lookback_tick(now)
    rereads = expected_rereads(world, tick)
    assert rereads, "the tick settles at least one client"
    todays = {c: local_today(world, a, now) for c, a in ACCOUNTS.items()}
    start = min(first for first, _ in rereads.values()) - timedelta(days=1)

    # First collection: every layer, each client to its local today, at revision 0.
    outcome = materialize_window(defs, catalog, instance, start, max(todays.values()))
    assert outcome.success, outcome.errors
    # The automation's baseline: what was just collected is already handled downstream.
    baseline = evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=now)
    execute_requested(defs, instance, baseline)
    weekly_before = warehouse.read("campaign_summaries", {"summary_type": "weekly"})

    # Meta attributes more purchases to the last 28 days; the lookback tick re-reads them.
    sandbox.set_revision(1)
    schedule = defs.resolve_schedule_def(LOOKBACK_SCHEDULE)
    context = build_schedule_context(
        scheduled_execution_time=tick,
        resources={"warehouse": warehouse, "clock": ClockResource()},
        repository_def=defs.get_repository_def(),
    )
    requests = schedule.evaluate_tick(context).run_requests or []
    assert {r.tags[RANGE_START].split("|")[0] for r in requests} == set(rereads)
    for request in requests:
        job = defs.resolve_job_def(request.job_name or schedule.job_name)
        run = job.execute_in_process(instance=instance, tags=request.tags, raise_on_error=False)
        assert run.success, request.tags

    revisions = {
        client_id: {
            d: int(client_id in rereads and rereads[client_id][0] <= d <= rereads[client_id][1])
            for d in days_between(start, todays[client_id])
        }
        for client_id in ACCOUNTS
    }

    # daily_kpi_data: the re-read days hold the new numbers, the others the old ones.
    for client_id, account_id in ACCOUNTS.items():
        daily = warehouse.read("daily_kpi_data", {"client_id": client_id}, ["date"])
        assert list(daily["date"]) == list(revisions[client_id])  # replaced, never appended
        for row in daily.to_dict("records"):
            truth = day_truth(
                world,
                account_id,
                row["date"],
                revisions[client_id][row["date"]],
                todays[client_id],
            )
            assert stored_kpis(row) == normal_expected(truth), (client_id, row["date"])

    # Nothing above daily_kpi_data moved yet: the summaries still hold the old numbers.
    weekly_now = warehouse.read("campaign_summaries", {"summary_type": "weekly"})
    assert weekly_now.to_dict("records") == weekly_before.to_dict("records")
    changed_weeks = 0
    for row in weekly_now.to_dict("records"):
        client_id = row["client_id"]
        old = {d: 0 for d in revisions[client_id]}
        truth = sum_truth(
            world, ACCOUNTS[client_id], week_days(row["summary_date"]), old, todays[client_id]
        )
        assert stored_kpis(row) == normal_expected(truth), (client_id, row["summary_date"])
        new = sum_truth(
            world,
            ACCOUNTS[client_id],
            week_days(row["summary_date"]),
            revisions[client_id],
            todays[client_id],
        )
        changed_weeks += new.reservations != truth.reservations
    assert changed_weeks, "late attribution changes at least one complete week"

    # Dagster evaluates the conditions; the runs it requests refresh every store above.
    result = evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=baseline.cursor, evaluation_time=now
    )
    assert result.get_requested_partitions(WEEKLY) == {
        f"{client_id}|{monday}"
        for client_id, (first, last) in rereads.items()
        for monday in mondays_overlapping(first, last)
        if monday + timedelta(days=7) <= now.date()  # a week exists once it ended (UTC)
    }
    assert result.get_requested_partitions(MONTHLY) == {
        f"{client_id}|{month_first}"
        for client_id, (first, last) in rereads.items()
        for month_first in {first.replace(day=1), last.replace(day=1)}
        if month_days(month_first)[-1] < now.date()  # a month exists once it ended (UTC)
    }
    for key in (CACHE, ROLLUPS):
        assert result.get_requested_partitions(key) == set(rereads), key
    execute_requested(defs, instance, result)

    for client_id, account_id in ACCOUNTS.items():
        today, revision_of = todays[client_id], revisions[client_id]
        summaries = warehouse.read("campaign_summaries", {"client_id": client_id})
        for row in summaries.to_dict("records"):
            first: date = row["summary_date"]
            days = week_days(first) if row["summary_type"] == "weekly" else month_days(first)
            truth = sum_truth(world, account_id, days, revision_of, today)
            assert stored_kpis(row) == normal_expected(truth), (client_id, first)

        monday = today - timedelta(days=today.weekday())
        cache = warehouse.read("current_week_cache", {"client_id": client_id})
        truth = sum_truth(world, account_id, days_between(monday, today), revision_of, today)
        assert stored_kpis(cache.iloc[0].to_dict()) == normal_expected(truth), client_id

        month_first = today.replace(day=1)
        previous_first = (month_first - timedelta(days=1)).replace(day=1)
        windows = {
            "month_to_date": (month_first, today - timedelta(days=1)),
            "last_7_days": (today - timedelta(days=7), today - timedelta(days=1)),
            "last_14_days": (today - timedelta(days=14), today - timedelta(days=1)),
            "last_30_days": (today - timedelta(days=30), today - timedelta(days=1)),
            "previous_month": (previous_first, month_first - timedelta(days=1)),
        }
        rollups = warehouse.read("client_kpi_rollups", {"client_id": client_id})
        assert set(rollups["rollup_window"]) == set(windows)
        for row in rollups.to_dict("records"):
            first, last = windows[row["rollup_window"]]
            truth = sum_truth(world, account_id, days_between(first, last), revision_of, today)
            assert stored_kpis(row) == normal_expected(truth), (client_id, row["rollup_window"])
