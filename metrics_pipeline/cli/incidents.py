"""The demo's two planted incidents and the alerts they raise.

The demo's sandbox breaks one client's conversion tracking over its last three whole days
and gives another a spend spike (a budget typed with one zero too many) 23 days back;
after the runs, the demo prints what `check_alert_sensor` would send for them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dagster import AssetCheckKey, AssetKey, DagsterInstance

from metrics_pipeline.automation.check_alerts import evaluate, new_evaluations, outcome_of
from metrics_pipeline.checks import names
from metrics_pipeline.sandbox.plants import SpendSpike, TrackingBreak, plant
from metrics_pipeline.sandbox.world import World

BROKEN_ACCOUNT = "1000000002"  # canyon_lodge
SPIKE_ACCOUNT = "1000000003"  # altstadt_apartments
BROKEN_DAYS = 3
SPIKE_DAYS_BACK = 23  # between the sandbox's two campaign stops, well inside the window
SPIKE_FACTOR = 10
WATCH_CHECKS = (names.CONVERSION_TRACKING, names.KPI_ANOMALIES)


def plant_demo_incidents(world: World, now: datetime) -> list[str]:
    """Plant both incidents in `world` on days relative to each account's today at `now`;
    one line describing each."""
    today = world.local_today(BROKEN_ACCOUNT, now)
    first, last = today - timedelta(days=BROKEN_DAYS), today - timedelta(days=1)
    plant(world, TrackingBreak(BROKEN_ACCOUNT, first, last))
    spike = world.local_today(SPIKE_ACCOUNT, now) - timedelta(days=SPIKE_DAYS_BACK)
    plant(world, SpendSpike(SPIKE_ACCOUNT, spike, SPIKE_FACTOR))
    return [
        f"planted: canyon_lodge's conversion tracking broken {first} .. {last}",
        f"planted: altstadt_apartments spends {SPIKE_FACTOR}x its usual on {spike}",
    ]


def watch_alerts(instance: DagsterInstance) -> list[tuple[str, str]]:
    """(subject, body) of every alert the tracking and anomaly checks raised in `instance`,
    as the alert sensor words them."""
    keys = [AssetCheckKey(AssetKey("daily_kpi_data"), name) for name in WATCH_CHECKS]
    evaluations, _ = new_evaluations(instance, keys, {})
    messages, _ = evaluate([outcome_of(e) for e in evaluations], {})
    return messages
