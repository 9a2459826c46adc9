"""Calendar boundaries: the one definition of a week, a month, a trailing window, the rollup
windows and when a day is settled enough to collect.

All dates are calendar days in the ad account's own timezone.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Period:
    """An inclusive range of calendar days."""

    start: date
    end: date

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1


def week_start(day: date) -> date:
    """ISO week: Monday is the first day."""
    return day - timedelta(days=day.weekday())


def week_of(day: date) -> Period:
    start = week_start(day)
    return Period(start, start + timedelta(days=6))


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_of(day: date) -> Period:
    last = calendar.monthrange(day.year, day.month)[1]
    return Period(day.replace(day=1), day.replace(day=last))


def previous_month(day: date) -> Period:
    return month_of(month_start(day) - timedelta(days=1))


def trailing_days(today: date, days: int) -> Period:
    """The `days` complete days before `today` (today excluded)."""
    return Period(today - timedelta(days=days), today - timedelta(days=1))


def local_today(now: datetime, timezone: str) -> date:
    """The calendar date an account in `timezone` is living at instant `now`."""
    return now.astimezone(ZoneInfo(timezone)).date()


def last_live_day(now: datetime) -> date:
    """The last calendar day any account is already living at `now`: UTC tomorrow (no
    timezone is more than a day ahead of UTC), the last daily partition."""
    return now.astimezone(UTC).date() + timedelta(days=1)


# The windows of client_kpi_rollups, by name.
ROLLUP_WINDOWS = ("month_to_date", "last_7_days", "last_14_days", "last_30_days", "previous_month")


def rollup_windows(today: date) -> dict[str, Period]:
    """The rollup windows for a client living on `today` (local date)."""
    month = month_of(today)
    return {
        "month_to_date": Period(month.start, today - timedelta(days=1)),
        "last_7_days": trailing_days(today, 7),
        "last_14_days": trailing_days(today, 14),
        "last_30_days": trailing_days(today, 30),
        "previous_month": previous_month(today),
    }


# A day is collected once this many hours of the next day have passed in its timezone.
SETTLE_HOURS = 2  # after local midnight, before yesterday is collected


def last_due_day(moment: datetime, tz: str, ready_hour: int) -> date:
    """The newest day that is due at `moment`: the client's yesterday once `ready_hour` of
    its today has passed, else the day before. The one rule for when a day is due: for
    collection (`ready_hour` = SETTLE_HOURS), storage (the freshness hour) and every count
    of missing days."""
    local = moment.astimezone(ZoneInfo(tz))
    return local.date() - timedelta(days=1 if local.hour >= ready_hour else 2)


def due_days(
    history_start: date, moment: datetime, tz: str, ready_hour: int, history_days: int
) -> list[date]:
    """The last `history_days` due days (none before `history_start`), oldest first."""
    last = last_due_day(moment, tz, ready_hour)
    first = max(history_start, last - timedelta(days=history_days - 1))
    return Period(first, last).days() if first <= last else []


def settled_yesterday(moment: datetime, tz: str, settle_hours: int) -> date | None:
    """The client's yesterday once it is due, else None (the schedules ask only for it)."""
    day = last_due_day(moment, tz, settle_hours)
    return day if day == local_today(moment, tz) - timedelta(days=1) else None
