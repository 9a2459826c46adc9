"""Whether schedules and sensors start switched on: `METRICS_AUTOMATION` = on (default) | off.

Off suits trying the UI on a laptop; each can still be switched on in the UI.
"""

import os

from dagster import DefaultScheduleStatus, DefaultSensorStatus

AUTOMATION_ENV = "METRICS_AUTOMATION"


def automation_on() -> bool:
    return os.environ.get(AUTOMATION_ENV, "on").strip().lower() != "off"


def schedule_status() -> DefaultScheduleStatus:
    return DefaultScheduleStatus.RUNNING if automation_on() else DefaultScheduleStatus.STOPPED


def sensor_status() -> DefaultSensorStatus:
    return DefaultSensorStatus.RUNNING if automation_on() else DefaultSensorStatus.STOPPED
