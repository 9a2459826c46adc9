"""Whether schedules and sensors start switched on: `METRICS_AUTOMATION` = on (default) | off,
and how often sensors tick.

Off suits trying the UI on a laptop; each can still be switched on in the UI.
"""

import os

from dagster import DefaultScheduleStatus, DefaultSensorStatus

AUTOMATION_ENV = "METRICS_AUTOMATION"
# Caps every sensor's interval (seconds), for trials and tests that cannot wait 10 minutes.
SENSOR_INTERVAL_ENV = "METRICS_SENSOR_INTERVAL_SECONDS"


def automation_on() -> bool:
    return os.environ.get(AUTOMATION_ENV, "on").strip().lower() != "off"


def schedule_status() -> DefaultScheduleStatus:
    return DefaultScheduleStatus.RUNNING if automation_on() else DefaultScheduleStatus.STOPPED


def sensor_status() -> DefaultSensorStatus:
    return DefaultSensorStatus.RUNNING if automation_on() else DefaultSensorStatus.STOPPED


def sensor_interval(default_seconds: int) -> int:
    """A sensor's minimum interval: its default, or less when the environment asks for it."""
    cap = os.environ.get(SENSOR_INTERVAL_ENV, "").strip()
    return min(default_seconds, int(cap)) if cap else default_seconds
