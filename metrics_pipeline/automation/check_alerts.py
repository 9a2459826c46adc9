"""Alerts on asset-check results: each NEW failure once, and one message on recovery.

The sensor reads each check's new evaluations (its cursor keeps the last one seen). A
failing check's offending rows name (client, date); those pairs are remembered in the
cursor. A later evaluation of the same check that covers a remembered pair without naming
it again is a recovery. Freshness and completeness failures arrive the same way, as checks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetCheckKey,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from metrics_pipeline.automation.notifier import AlertNotifier
from metrics_pipeline.automation.outbox import send_and_keep
from metrics_pipeline.automation.status import sensor_interval, sensor_status

MAX_EVENTS_PER_TICK = 500
# Finished check executions, by the status's name: Dagster exports no public type for it.
DONE = {"SUCCEEDED", "FAILED"}


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


def outcome_of(evaluation) -> CheckOutcome:
    """An AssetCheckEvaluation as the alerting reads it."""
    metadata = dict(evaluation.metadata or {})
    figures = {
        k: getattr(v, "value", v)
        for k, v in metadata.items()
        if k not in ("offending_rows", "offending_json", "covered")
    }
    return CheckOutcome(
        check=f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}",
        passed=evaluation.passed,
        offending=list(_metadata_value(metadata, "offending_json", []) or []),
        covered=dict(_metadata_value(metadata, "covered", {}) or {}),
        figures=figures,
    )


def _running(instance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is not None and not run.is_finished


def new_evaluations(
    instance, check_keys: Iterable[AssetCheckKey], seen: dict[str, int]
) -> tuple[list, dict[str, int]]:
    """Check evaluations newer than `seen` (last execution id per check), oldest first.

    Reads each check's execution history, which works on every event log storage (the
    embedded SQLite one is sharded by run, so one global event cursor would not).
    """
    seen = dict(seen)
    found: list[tuple[float, int, object]] = []
    for key in check_keys:
        name = key.to_user_string()
        records = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=MAX_EVENTS_PER_TICK
        )
        done = [r for r in records if r.status.value in DONE and r.event is not None]
        fresh = [r for r in done if r.id > seen.get(name, 0)]
        planned = [
            r.id
            for r in records
            if r.status.value not in DONE
            and r.id > seen.get(name, 0)
            and _running(instance, r.run_id)
        ]
        if done:
            # Stop short of a check still running, so its result is read once it lands.
            newest = max(r.id for r in done)
            seen[name] = min(newest, min(planned) - 1) if planned else newest
        unique = {}
        for record in fresh:  # a ranged check run may be recorded once per partition
            unique.setdefault((record.run_id, record.event.timestamp), record)
        for record in unique.values():
            evaluation = record.event.dagster_event.event_specific_data
            found.append((record.event.timestamp, record.id, evaluation))
    return [e for _, _, e in sorted(found, key=lambda item: item[:2])], seen


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


def build_check_alert_sensor(check_keys: list[AssetCheckKey], minimum_interval_seconds: int = 60):
    @sensor(
        name="check_alert_sensor",
        minimum_interval_seconds=sensor_interval(minimum_interval_seconds),
        default_status=sensor_status(),
        description="Sends each new asset-check failure once, and once when it recovers, to "
        "the configured webhook and email; undelivered messages are retried.",
    )
    def check_alert_sensor(context: SensorEvaluationContext, alerts: AlertNotifier):
        state = json.loads(context.cursor) if context.cursor else {}
        now = time.time()
        evaluations, seen = new_evaluations(context.instance, check_keys, state.get("seen", {}))
        messages, failing = evaluate([outcome_of(e) for e in evaluations], state.get("failing", {}))
        # Saved whatever the sends did: what went out is never sent again, and what did not
        # stays in the outbox for a later tick.
        outbox, report = send_and_keep(context, alerts, messages, state.get("outbox", []), now)
        context.update_cursor(json.dumps({"seen": seen, "failing": failing, "outbox": outbox}))
        if not evaluations and not report.sent and not outbox and not report.dropped:
            return SkipReason("no new check results")
        return SkipReason(f"{len(messages)} new alert(s); {report.summary()}")

    return check_alert_sensor
