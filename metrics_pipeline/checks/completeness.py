"""Completeness: which due days of each client are stored in daily_kpi_data, and the % of
them. The completeness check and collection_health both report this one count."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from metrics_pipeline.checks.settings import CheckSettings
from metrics_pipeline.config.clients import ClientConfig
from metrics_pipeline.domain.kpis import PLATFORM
from metrics_pipeline.domain.periods import due_days
from metrics_pipeline.meta.accounts import client_zones
from metrics_pipeline.warehouse.resource import WarehouseResource

# Days of a client whose timezone is not known yet are counted in UTC.
FALLBACK_TIMEZONE = "UTC"


@dataclass(frozen=True)
class Completeness:
    due: list[date]
    missing: list[date]

    @property
    def present(self) -> int:
        return len(self.due) - len(self.missing)


def completeness_pct(due: int, present: int) -> float:
    """present / due in percent, to the hundredth (collection_health stores 2 decimals);
    nothing due counts as complete."""
    return round(100.0 * present / due, 2) if due else 100.0


def completeness_by_client(
    clients: Iterable[ClientConfig],
    warehouse: WarehouseResource,
    history_start: date,
    now: datetime,
    checks: CheckSettings,
) -> dict[str, Completeness]:
    """Per client, the checked history's due days and those without a daily row."""
    clients = list(clients)
    zones = client_zones(clients, warehouse)
    found = {}
    for client in clients:
        tz = zones.get(client.id, FALLBACK_TIMEZONE)
        days = due_days(
            history_start, now, tz, checks.daily_fresh_by_hour, checks.completeness_days
        )
        where = {"client_id": client.id, "platform": PLATFORM, "date": days}
        stored = set(warehouse.read("daily_kpi_data", where)["date"])
        found[client.id] = Completeness(days, [d for d in days if d not in stored])
    return found
