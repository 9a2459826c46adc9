"""The pipeline's notion of "now": the real clock, or a fixed instant for replays and tests."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import ConfigurableResource

AS_OF_ENV = "METRICS_AS_OF"
AS_OF_EXAMPLE = "2026-11-19T10:00:00+00:00"


def parse_as_of(text: str) -> datetime:
    """An ISO 8601 date or date and time; UTC when it names no offset."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def as_of_problem(text: str) -> str | None:
    """Why `text` cannot pin "now" (what is accepted), or None if it can."""
    try:
        parse_as_of(text)
    except ValueError:
        return (
            f"{text!r} is not an ISO 8601 date and time; accepted: e.g. {AS_OF_EXAMPLE} or "
            "2026-11-19 (UTC when no offset is given), or unset for the real clock"
        )
    return None


class ClockResource(ConfigurableResource):
    """`as_of` (ISO 8601, e.g. 2026-11-19T10:00:00+00:00) pins "now"; empty means real time."""

    as_of: str = ""

    def now(self) -> datetime:
        if not self.as_of:
            return datetime.now(UTC)
        return parse_as_of(self.as_of)

    def now_or(self, scheduled: datetime) -> datetime:
        """A schedule's instant: the pinned "now" for replays, else its scheduled time."""
        return self.now() if self.as_of else scheduled
