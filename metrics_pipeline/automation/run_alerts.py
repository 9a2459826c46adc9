"""Alerts on failed runs, through the same channels as check alerts."""

from dagster import RunFailureSensorContext, run_failure_sensor

from metrics_pipeline.automation.notifier import AlertNotifier
from metrics_pipeline.automation.status import sensor_status
from metrics_pipeline.partitions import RANGE_END, RANGE_START


def step_error(event) -> str:
    """What a person can act on: a Failure's description, else the innermost exception."""
    data = event.step_failure_data
    if data is None:
        return event.message or "failed"
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    error = data.error
    while error is not None and error.cause is not None:
        error = error.cause
    return error.message.strip() if error is not None else (event.message or "failed")


def describe_failed_run(context: RunFailureSensorContext) -> tuple[str, str]:
    run = context.dagster_run
    tags = run.tags
    partitions = tags.get("dagster/partition") or (
        f"{tags[RANGE_START]} .. {tags[RANGE_END]}" if RANGE_START in tags else "-"
    )
    steps = [f"{e.step_key}: {step_error(e)}" for e in context.get_step_failure_events()] or [
        context.failure_event.message or "run failed"
    ]
    body = "\n".join([f"partitions: {partitions}", *steps])
    return f"Run failed: {run.job_name} ({run.run_id[:8]})", body


@run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=sensor_status(),
    description="Sends every failed run, with its partitions and errors, to the alert channels.",
)
def run_failure_alert_sensor(context: RunFailureSensorContext, alerts: AlertNotifier):
    subject, body = describe_failed_run(context)
    if alerts.enabled:
        alerts.send(subject, body)
    context.log.info(f"{subject}\n{body}")
