"""Alerts on failed runs, through the same channels and outbox as check alerts.

A plain sensor rather than a run-failure sensor: Dagster moves a run-status sensor's cursor
past a run whether or not the alert went out, so a failed send would be lost. This one
reads RUN_FAILURE events by storage id and keeps each message in its own cursor's outbox
until every channel took it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    RunStatusChangeRecordsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from metrics_pipeline.automation.notifier import AlertNotifier
from metrics_pipeline.automation.outbox import send_and_keep
from metrics_pipeline.automation.status import sensor_interval, sensor_status
from metrics_pipeline.partitions import RANGE_END, RANGE_START
from metrics_pipeline.steps.failures import step_error

MAX_RUNS_PER_TICK = 100


def describe_failed_run(
    run: DagsterRun, step_failures: Sequence, run_message: str
) -> tuple[str, str]:
    """Subject and body: the run's partitions, then each failed step's error."""
    tags = run.tags
    partitions = tags.get("dagster/partition") or (
        f"{tags[RANGE_START]} .. {tags[RANGE_END]}" if RANGE_START in tags else "-"
    )
    steps = [f"{e.step_key}: {step_error(e)}" for e in step_failures] or [
        run_message or "run failed"
    ]
    body = "\n".join([f"partitions: {partitions}", *steps])
    return f"Run failed: {run.job_name} ({run.run_id[:8]})", body


def describe_run(instance: DagsterInstance, run_id: str, run_message: str) -> tuple[str, str]:
    run = instance.get_run_by_id(run_id)
    if run is None:  # deleted since it failed
        return f"Run failed: {run_id[:8]}", run_message or "run failed"
    steps = [
        entry.dagster_event
        for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE)
        if entry.dagster_event is not None
    ]
    return describe_failed_run(run, steps, run_message)


def new_failures(
    instance: DagsterInstance, after_id: int | None, after_time: float
) -> tuple[list[tuple[str, str]], int | None]:
    """Messages for runs that failed since the last tick, and the new cursor's storage id.

    Without a stored id (the first tick), failures after `after_time` are read.
    """
    result = instance.fetch_run_status_changes(
        RunStatusChangeRecordsFilter(
            DagsterEventType.RUN_FAILURE,
            after_storage_id=after_id,
            after_timestamp=None if after_id is not None else after_time,
        ),
        limit=MAX_RUNS_PER_TICK,
        ascending=True,
    )
    messages = []
    for record in result.records:
        entry = record.event_log_entry
        message = entry.dagster_event.message if entry.dagster_event else ""
        messages.append(describe_run(instance, entry.run_id, message or ""))
    last = max((r.storage_id for r in result.records), default=after_id)
    return messages, last


@sensor(
    name="run_failure_alert_sensor",
    minimum_interval_seconds=sensor_interval(60),
    default_status=sensor_status(),
    description="Sends every failed run, with its partitions and errors, to the alert "
    "channels; undelivered messages are retried.",
)
def run_failure_alert_sensor(context: SensorEvaluationContext, alerts: AlertNotifier):
    state = json.loads(context.cursor) if context.cursor else {}
    now = time.time()
    # On the first tick, failures as old as an alert may get are still sent.
    messages, last_id = new_failures(
        context.instance, state.get("after_id"), now - alerts.max_age_hours * 3600
    )
    outbox, report = send_and_keep(context, alerts, messages, state.get("outbox", []), now)
    context.update_cursor(json.dumps({"after_id": last_id, "outbox": outbox}))
    if not messages and not report.sent and not outbox and not report.dropped:
        return SkipReason("no failed runs")
    return SkipReason(f"{len(messages)} failed run(s); {report.summary()}")
