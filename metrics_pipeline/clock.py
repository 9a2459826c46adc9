"""The pipeline's notion of "now": the real clock, or a fixed instant for replays and tests."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import ConfigurableResource

AS_OF_ENV = "METRICS_AS_OF"


class ClockResource(ConfigurableResource):
    """`as_of` (ISO 8601, e.g. 2026-11-19T10:00:00+00:00) pins "now"; empty means real time."""

    as_of: str = ""

    def now(self) -> datetime:
        if not self.as_of:
            return datetime.now(UTC)
        moment = datetime.fromisoformat(self.as_of)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def now_or(self, scheduled: datetime) -> datetime:
        """A schedule's instant: the pinned "now" for replays, else its scheduled time."""
        return self.now() if self.as_of else scheduled
