"""Calendar boundaries: the one definition of a week, a month and a trailing window.

All dates are calendar days in the ad account's own timezone.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
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
