"""Alerts on asset-check results: each NEW failure once, and one message on recovery.

The sensor reads check evaluations from the event log after its cursor. A failing check's
offending rows name (client, date); those pairs are remembered in the cursor. A later
evaluation of the same check that covers a remembered pair without naming it again is a
recovery. Freshness and completeness failures arrive the same way, as checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dagster import (
    DagsterEventType,
    DefaultSensorStatus,
    EventRecordsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from metrics_pipeline.automation.notifier import AlertNotifier

MAX_EVENTS_PER_TICK = 500


@dataclass(frozen=True)
class CheckOutcome:
    check: str  # "asset_key:check_name"
    passed: bool
    offending: list[dict[str, Any]]
    covered: dict[str, list[str]]
    figures: dict[str, Any]


def _metadata_value(metadata: dict, name: str, default: Any) -> Any:
    entry = metadata.get(name)
    return default if entry is None else getattr(entry, "value", entry)


def read_outcomes(records: Iterable) -> list[CheckOutcome]:
    outcomes = []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        metadata = dict(evaluation.metadata or {})
        figures = {
            k: getattr(v, "value", v)
            for k, v in metadata.items()
            if k not in ("offending_rows", "offending_json", "covered")
        }
        outcomes.append(
            CheckOutcome(
                check=f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}",
                passed=evaluation.passed,
                offending=list(_metadata_value(metadata, "offending_json", []) or []),
                covered=dict(_metadata_value(metadata, "covered", {}) or {}),
                figures=figures,
            )
        )
    return outcomes


def _item(check: str, row: dict[str, Any]) -> str:
    return f"{check}|{row.get('client', '?')}|{row.get('date', '?')}"


def _describe(row: dict[str, Any]) -> str:
    details = ", ".join(f"{k}={v}" for k, v in row.items() if k not in ("client", "date"))
    return f"client {row.get('client')}, date {row.get('date')}: {details}"


def evaluate(
    outcomes: list[CheckOutcome], failing: dict[str, str]
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """New messages (subject, body) and the updated set of failing items."""
    failing = dict(failing)
    messages: list[tuple[str, str]] = []
    for outcome in outcomes:
        current = {_item(outcome.check, row): _describe(row) for row in outcome.offending}
        new = {k: v for k, v in current.items() if k not in failing}
        recovered = [
            k
            for k in failing
            if k.startswith(outcome.check + "|")
            and k not in current
            and k.split("|")[-1] in outcome.covered.get(k.split("|")[-2], [])
        ]
        figures = ", ".join(f"{k}={v}" for k, v in sorted(outcome.figures.items()))
        if new:
            body = "\n".join(sorted(new.values())) + (f"\n({figures})" if figures else "")
            messages.append((f"Check failed: {outcome.check} ({len(new)} new)", body))
        if recovered:
            body = "\n".join(sorted(failing[k] for k in recovered))
            messages.append((f"Check recovered: {outcome.check} ({len(recovered)})", body))
        for key in recovered:
            failing.pop(key)
        failing.update(new)
    return messages, failing


def build_check_alert_sensor(minimum_interval_seconds: int = 60):
    @sensor(
        name="check_alert_sensor",
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="Sends each new asset-check failure once, and once when it recovers, to "
        "the configured webhook and email.",
    )
    def check_alert_sensor(context: SensorEvaluationContext, alerts: AlertNotifier):
        state = json.loads(context.cursor) if context.cursor else {"after": 0, "failing": {}}
        records = context.instance.get_event_records(
            EventRecordsFilter(
                event_type=DagsterEventType.ASSET_CHECK_EVALUATION,
                after_cursor=state["after"] or None,
            ),
            limit=MAX_EVENTS_PER_TICK,
            ascending=True,
        )
        if not records:
            return SkipReason("no new check results")
        messages, failing = evaluate(read_outcomes(records), state["failing"])
        for subject, body in messages:
            if alerts.enabled:
                alerts.send(subject, body)
            context.log.info(f"{subject}\n{body}")
        context.update_cursor(json.dumps({"after": records[-1].storage_id, "failing": failing}))
        return SkipReason(f"{len(messages)} alert(s) sent" if messages else "nothing new")

    return check_alert_sensor
