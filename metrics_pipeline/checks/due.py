"""Which days must be stored by now: the window the completeness and freshness checks and
collection_health all count."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from metrics_pipeline.checks.settings import CheckSettings
from metrics_pipeline.domain.periods import Period


def last_due_day(now: datetime, tz: str, fresh_by_hour: int) -> date:
    """The newest day that must be stored by `now`: the client's yesterday once its set
    local hour has passed, else the day before (completeness and freshness agree)."""
    local = now.astimezone(ZoneInfo(tz))
    return local.date() - timedelta(days=1 if local.hour >= fresh_by_hour else 2)


def due_days(history_start: date, now: datetime, tz: str, checks: CheckSettings) -> list[date]:
    """The days of the checked history that must be stored by `now`: the one window the
    completeness check and collection_health both count."""
    last = last_due_day(now, tz, checks.daily_fresh_by_hour)
    first = max(history_start, last - timedelta(days=checks.completeness_days - 1))
    return Period(first, last).days() if first <= last else []
