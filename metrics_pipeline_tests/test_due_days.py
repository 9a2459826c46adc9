"""Which days are due: one rule for collection, storage and every count of missing days."""

from __future__ import annotations

from datetime import UTC, date, datetime

from metrics_pipeline.domain.periods import due_days, last_due_day, settled_yesterday
from metrics_pipeline_tests.conftest import NOW  # 2026-11-18 20:00 UTC

# 20:00 UTC is 09:00 the next day in Auckland (UTC+13 in November), 21:00 in Berlin.
AUCKLAND, BERLIN = "Pacific/Auckland", "Europe/Berlin"
JUST_AFTER_BERLIN_MIDNIGHT = datetime(2026, 11, 18, 23, 30, tzinfo=UTC)  # 00:30 local


def test_the_last_due_day_is_yesterday_once_the_hour_has_passed():
    assert last_due_day(NOW, AUCKLAND, 9) == date(2026, 11, 18)
    assert last_due_day(NOW, AUCKLAND, 10) == date(2026, 11, 17)
    assert last_due_day(NOW, BERLIN, 6) == date(2026, 11, 17)
    assert last_due_day(JUST_AFTER_BERLIN_MIDNIGHT, BERLIN, 2) == date(2026, 11, 17)
    assert last_due_day(JUST_AFTER_BERLIN_MIDNIGHT, BERLIN, 0) == date(2026, 11, 18)


def test_settled_yesterday_is_none_until_the_hour():
    assert settled_yesterday(NOW, AUCKLAND, 2) == date(2026, 11, 18)
    assert settled_yesterday(JUST_AFTER_BERLIN_MIDNIGHT, BERLIN, 2) is None
    assert settled_yesterday(JUST_AFTER_BERLIN_MIDNIGHT, BERLIN, 0) == date(2026, 11, 18)


def test_due_days_stop_at_the_history_start_and_the_window():
    start = date(2026, 11, 15)
    assert due_days(start, NOW, BERLIN, 6, 90) == [
        date(2026, 11, 15),
        date(2026, 11, 16),
        date(2026, 11, 17),
    ]
    assert due_days(start, NOW, BERLIN, 6, 2) == [date(2026, 11, 16), date(2026, 11, 17)]
    assert due_days(date(2026, 11, 18), NOW, BERLIN, 6, 90) == []
