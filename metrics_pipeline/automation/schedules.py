"""Schedules: collect each client's yesterday once it has ended in its own timezone, re-read
the attribution window as one ranged run, keep the current-week cache fresh, run the
history-wide checks."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from dagster import (
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from metrics_pipeline.automation.status import schedule_status
from metrics_pipeline.catalog import Catalog
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.domain.periods import SETTLE_HOURS, settled_yesterday
from metrics_pipeline.meta.accounts import client_zones
from metrics_pipeline.partitions import (
    RANGE_END,
    RANGE_START,
    client_blocks,
    day_range_tags,
    multi_key,
)
from metrics_pipeline.warehouse.resource import WarehouseResource

LOOKBACK_DAYS = 28
CACHE_DAY_HOURS = (6, 23)  # local hours during which the cache is refreshed


def build_schedules(
    catalog: Catalog,
    collect_job,
    cache_job,
    health_job,
    settle_hours: int = SETTLE_HOURS,
    lookback_days: int = LOOKBACK_DAYS,
):
    @schedule(
        name="daily_collection_schedule",
        job=collect_job,
        cron_schedule="5 * * * *",
        default_status=schedule_status(),
        description=f"Hourly: each client's yesterday, once {settle_hours}h of its today have "
        "passed in its own timezone (once per client and day).",
    )
    def daily_collection_schedule(
        context: ScheduleEvaluationContext, warehouse: WarehouseResource, clock: ClockResource
    ):
        moment = clock.now_or(context.scheduled_execution_time)
        requests = []
        for client_id, tz in client_zones(catalog.clients, warehouse).items():
            day = settled_yesterday(moment, tz, settle_hours)
            if day is not None and day >= catalog.partitions.history_start:
                requests.append(
                    RunRequest(
                        run_key=f"daily:{client_id}:{day}",
                        partition_key=multi_key(client_id, day),
                        tags={"metrics_pipeline/trigger": "daily_collection"},
                    )
                )
        return requests or SkipReason("no client has a settled yesterday yet")

    @schedule(
        name="attribution_lookback_schedule",
        job=collect_job,
        cron_schedule="35 * * * *",
        default_status=schedule_status(),
        description=f"Daily per client, after its yesterday settled: re-read the {lookback_days} "
        "days before yesterday as ONE ranged run, so late conversions reach every store.",
    )
    def attribution_lookback_schedule(
        context: ScheduleEvaluationContext, warehouse: WarehouseResource, clock: ClockResource
    ):
        moment = clock.now_or(context.scheduled_execution_time)
        requests = []
        for client_id, tz in client_zones(catalog.clients, warehouse).items():
            day = settled_yesterday(moment, tz, settle_hours)
            if day is None:
                continue
            last = day - timedelta(days=1)
            first = max(catalog.partitions.history_start, day - timedelta(days=lookback_days))
            if first > last:
                continue
            requests.append(
                RunRequest(
                    run_key=f"lookback:{client_id}:{day}",
                    tags={
                        **day_range_tags(client_id, first, last),
                        "metrics_pipeline/trigger": "attribution_lookback",
                    },
                )
            )
        return requests or SkipReason("no client has a settled yesterday yet")

    @schedule(
        name="current_week_cache_schedule",
        job=cache_job,
        cron_schedule="*/15 * * * *",
        default_status=schedule_status(),
        description="Every 15 minutes, for the clients whose local time is within the day.",
    )
    def current_week_cache_schedule(
        context: ScheduleEvaluationContext, warehouse: WarehouseResource, clock: ClockResource
    ):
        moment = clock.now_or(context.scheduled_execution_time)
        awake = {
            client_id
            for client_id, tz in client_zones(catalog.clients, warehouse).items()
            if CACHE_DAY_HOURS[0] <= moment.astimezone(ZoneInfo(tz)).hour <= CACHE_DAY_HOURS[1]
        }
        requests = [
            RunRequest(
                run_key=f"cache:{block[0]}:{block[-1]}:{moment.isoformat()}",
                tags={RANGE_START: block[0], RANGE_END: block[-1]},
            )
            for block in client_blocks(catalog.client_ids, awake)
        ]
        return requests or SkipReason("it is night for every client")

    @schedule(
        name="health_checks_schedule",
        job=health_job,
        cron_schedule="*/15 * * * *",
        default_status=schedule_status(),
        description="Every 15 minutes: completeness and freshness checks, collection_health.",
    )
    def health_checks_schedule(context: ScheduleEvaluationContext):
        return RunRequest(run_key=f"health:{context.scheduled_execution_time.isoformat()}")

    return [
        daily_collection_schedule,
        attribution_lookback_schedule,
        current_week_cache_schedule,
        health_checks_schedule,
    ]
