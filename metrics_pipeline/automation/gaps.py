"""The gap sensor: finds (client, day) partitions that are missing or failed and backfills
them, a bounded number at a time, as ranged runs."""

from __future__ import annotations

from datetime import date, timedelta

from dagster import (
    AssetKey,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from metrics_pipeline.automation.status import sensor_interval, sensor_status
from metrics_pipeline.catalog import Catalog
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.domain.periods import SETTLE_HOURS, due_days
from metrics_pipeline.meta.accounts import client_zones
from metrics_pipeline.partitions import contiguous_ranges, day_range_tags
from metrics_pipeline.warehouse.resource import WarehouseResource

GAP_TAG = "metrics_pipeline/gap_backfill"
# A client whose timezone is not configured and whose account was never read yet is looked
# at from the last timezone to start a day: its "yesterday" has then ended everywhere, and
# the first run stores the account's real timezone for the next ticks.
UNREAD_ZONE = "Etc/GMT+12"
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def missing_days(
    catalog: Catalog,
    materialized: set[str],
    zones: dict[str, str],
    moment,
    history_days: int,
    settle_hours: int,
) -> dict[str, list[date]]:
    """Per client, the settled days of the history window with no daily_kpi_data."""
    gaps: dict[str, list[date]] = {}
    for client_id, tz in zones.items():
        wanted = due_days(catalog.partitions.history_start, moment, tz, settle_hours, history_days)
        missing = [d for d in wanted if f"{client_id}|{d}" not in materialized]
        if missing:
            gaps[client_id] = missing
    return gaps


def build_gap_sensor(
    catalog: Catalog,
    collect_job,
    history_days: int = 90,
    max_partitions: int = 60,
    settle_hours: int = SETTLE_HOURS,
):
    @sensor(
        name="gap_backfill_sensor",
        job=collect_job,
        minimum_interval_seconds=sensor_interval(600),
        default_status=sensor_status(),
        description=f"Every 10 minutes: (client, day) partitions of the last {history_days} "
        f"settled days with no daily_kpi_data (missing or failed) are backfilled, at most "
        f"{max_partitions} per tick, one ranged run per client and stretch of days.",
    )
    def gap_backfill_sensor(
        context: SensorEvaluationContext, warehouse: WarehouseResource, clock: ClockResource
    ):
        in_flight = context.instance.get_runs(
            RunsFilter(tags={GAP_TAG: "true"}, statuses=IN_FLIGHT)
        )
        busy = {run.tags.get("metrics_pipeline/client") for run in in_flight}
        materialized = {
            str(key)
            for key in context.instance.get_materialized_partitions(AssetKey("daily_kpi_data"))
        }
        moment = clock.now()
        known = client_zones(catalog.clients, warehouse)
        gaps = missing_days(
            catalog,
            materialized,
            {client_id: known.get(client_id, UNREAD_ZONE) for client_id in catalog.client_ids},
            moment,
            history_days,
            settle_hours,
        )
        requests, budget = [], max_partitions
        for client_id, days in gaps.items():
            if client_id in busy:
                continue
            for first, last in contiguous_ranges(days):
                if budget <= 0:
                    break
                last = min(last, first + timedelta(days=budget - 1))
                budget -= (last - first).days + 1
                requests.append(
                    RunRequest(
                        run_key=f"gap:{client_id}:{first}:{last}:{len(in_flight)}",
                        tags={
                            **day_range_tags(client_id, first, last),
                            GAP_TAG: "true",
                            "metrics_pipeline/client": client_id,
                        },
                    )
                )
        return requests or SkipReason("no gaps")

    return gap_backfill_sensor
