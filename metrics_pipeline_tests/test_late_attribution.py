"""Re-reading recent days after Meta re-attributes conversions updates every store above."""

from __future__ import annotations

from datetime import timedelta

from metrics_pipeline.domain.periods import week_of
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.ground_truth import day_truth
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.helpers import days_between, local_today
from metrics_pipeline_tests.truth import normal_expected, stored_kpis

CLIENT = "canyon_lodge"
ACCOUNT = "act_1000000002"


def test_recent_days_are_replaced_and_summaries_follow(
    defs, catalog, instance, sandbox, world, now, warehouse_url
):
    today = local_today(world, ACCOUNT, now)
    start = week_of(today).start - timedelta(days=14)
    outcome = materialize_window(defs, catalog, instance, start, today, [CLIENT])
    assert outcome.success, outcome.errors
    warehouse = WarehouseResource(url=warehouse_url)
    before = warehouse.read("daily_kpi_data", {"client_id": CLIENT}, ["date"])

    # Meta attributes more purchases to recent days; the pipeline re-reads the last 3 days.
    sandbox.set_revision(1)
    recent_start = today - timedelta(days=2)
    outcome = materialize_window(defs, catalog, instance, recent_start, today, [CLIENT])
    assert outcome.success, outcome.errors

    after = warehouse.read("daily_kpi_data", {"client_id": CLIENT}, ["date"])
    assert list(after["date"]) == list(before["date"])  # replaced, never appended
    revisions = {}
    for old, new in zip(before.to_dict("records"), after.to_dict("records"), strict=True):
        revision = 1 if new["date"] >= recent_start else 0
        revisions[new["date"]] = revision
        truth = day_truth(world, ACCOUNT, new["date"], revision, today)
        assert stored_kpis(new) == normal_expected(truth), new["date"]
        if revision == 0:
            assert stored_kpis(new) == stored_kpis(old)
    changed = [d for d in revisions if revisions[d] == 1]
    assert int(after[after["date"].isin(changed)]["reservations"].sum()) > int(
        before[before["date"].isin(changed)]["reservations"].sum()
    )

    # The current week's cache and the rollups are rebuilt from the replaced days.
    week_days = days_between(week_of(today).start, today)
    cache = warehouse.read("current_week_cache", {"client_id": CLIENT}).iloc[0].to_dict()
    expected_reservations = sum(
        day_truth(world, ACCOUNT, d, revisions[d], today).reservations for d in week_days
    )
    assert cache["reservations"] == expected_reservations
    last_week = warehouse.read(
        "client_kpi_rollups", {"client_id": CLIENT, "rollup_window": "last_7_days"}
    )
    last7 = days_between(today - timedelta(days=7), today - timedelta(days=1))
    assert int(last_week.iloc[0]["reservations"]) == sum(
        day_truth(world, ACCOUNT, d, revisions[d], today).reservations for d in last7
    )
    # A complete week whose days were re-read, if the three days reach back into one.
    weekly = warehouse.read("campaign_summaries", {"client_id": CLIENT, "summary_type": "weekly"})
    for row in weekly.to_dict("records"):
        days = week_of(row["summary_date"]).days()
        assert row["reservations"] == sum(
            day_truth(world, ACCOUNT, d, revisions.get(d, 0), today).reservations
            for d in days
            if d in revisions
        )
