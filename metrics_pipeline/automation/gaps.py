"""The gap sensor: finds (client, day) partitions that are missing or failed and backfills
them, a bounded number at a time, as ranged runs; and the days without exchange rates, so
the portfolio never waits on (or fails for) a day collected before its rates were read."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

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
from metrics_pipeline.domain.periods import SETTLE_HOURS, due_days, last_live_day
from metrics_pipeline.meta.accounts import client_zones
from metrics_pipeline.partitions import RANGE_END, RANGE_START, contiguous_ranges, day_range_tags
from metrics_pipeline.warehouse.resource import WarehouseResource

GAP_TAG = "metrics_pipeline/gap_backfill"
FX_GAP_TAG = "metrics_pipeline/rates_backfill"
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


def due_by_client(
    catalog: Catalog,
    zones: dict[str, str],
    moment: datetime,
    history_days: int,
    settle_hours: int,
) -> dict[str, list[date]]:
    """Per client, the settled days of the history window."""
    return {
        client_id: due_days(
            catalog.partitions.history_start, moment, tz, settle_hours, history_days
        )
        for client_id, tz in zones.items()
    }


def missing_days(due: dict[str, list[date]], materialized: set[str]) -> dict[str, list[date]]:
    """Per client, the due days with no daily_kpi_data."""
    gaps: dict[str, list[date]] = {}
    for client_id, wanted in due.items():
        missing = [d for d in wanted if f"{client_id}|{d}" not in materialized]
        if missing:
            gaps[client_id] = missing
    return gaps


def missing_rate_days(
    due: dict[str, list[date]], materialized: set[str], moment: datetime, last_key: str | None
) -> list[date]:
    """Days without fx_rates, from the first due day through UTC tomorrow (the last day any
    account lives in), so each day has its (carried) rates before it is collected."""
    first = min((days[0] for days in due.values() if days), default=None)
    if first is None or last_key is None:
        return []
    last = min(last_live_day(moment), date.fromisoformat(last_key))
    span = (last - first).days + 1
    return [
        day
        for day in (first + timedelta(days=n) for n in range(span))
        if day.isoformat() not in materialized
    ]


def build_gap_sensor(
    catalog: Catalog,
    collect_job,
    rates_job,
    history_days: int = 90,
    max_partitions: int = 60,
    settle_hours: int = SETTLE_HOURS,
):
    @sensor(
        name="gap_backfill_sensor",
        jobs=[collect_job, rates_job],
        minimum_interval_seconds=sensor_interval(600),
        default_status=sensor_status(),
        description=f"Every 10 minutes: (client, day) partitions of the last {history_days} "
        f"settled days with no daily_kpi_data (missing or failed) are backfilled, at most "
        f"{max_partitions} per tick, one ranged run per client and stretch of days; days "
        "without exchange rates get them first, at most one attempt per stretch an hour.",
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
        due = due_by_client(
            catalog,
            {client_id: known.get(client_id, UNREAD_ZONE) for client_id in catalog.client_ids},
            moment,
            history_days,
            settle_hours,
        )
        requests = rate_requests(context, due, moment)
        gaps = missing_days(due, materialized)
        budget = max_partitions
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
                        job_name=collect_job.name,
                        run_key=f"gap:{client_id}:{first}:{last}:{len(in_flight)}",
                        tags={
                            **day_range_tags(client_id, first, last),
                            GAP_TAG: "true",
                            "metrics_pipeline/client": client_id,
                        },
                    )
                )
        return requests or SkipReason("no gaps")

    def rate_requests(
        context: SensorEvaluationContext, due: dict[str, list[date]], moment: datetime
    ) -> list[RunRequest]:
        # Requested before the collections of the same tick, and while it is queued or
        # running the portfolio waits for it (its dependencies are in progress).
        if context.instance.get_runs(RunsFilter(tags={FX_GAP_TAG: "true"}, statuses=IN_FLIGHT)):
            return []
        have = {
            str(key) for key in context.instance.get_materialized_partitions(AssetKey("fx_rates"))
        }
        missing = missing_rate_days(
            due, have, moment, catalog.partitions.days.get_last_partition_key()
        )
        hour = moment.astimezone(UTC).strftime("%Y-%m-%dT%H")
        return [
            RunRequest(
                job_name=rates_job.name,
                # A stretch whose run failed is tried again the next hour, not every tick.
                run_key=f"rates:{first}:{last}:{hour}",
                tags={RANGE_START: str(first), RANGE_END: str(last), FX_GAP_TAG: "true"},
            )
            for first, last in contiguous_ranges(missing)
        ]

    return gap_backfill_sensor
