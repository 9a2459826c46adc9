"""Marketing API versions Meta supports, what a configured version means on a date, and the
attribution windows Meta still returns.

Meta silently upgrades calls to an expired version instead of failing them, so a stale
default changes the meaning of the data without any error: the version is checked instead.
Update `VERSIONS` from Meta's changelog when a version is released or its expiry announced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


@dataclass(frozen=True)
class ApiVersion:
    name: str
    released: date
    expires: date | None  # None while Meta has not announced it


VERSIONS: tuple[ApiVersion, ...] = (
    ApiVersion("v24.0", date(2025, 10, 8), date(2026, 11, 10)),
    ApiVersion("v25.0", date(2026, 2, 18), date(2027, 2, 23)),
    ApiVersion("v26.0", date(2026, 7, 29), None),
    ApiVersion("v27.0", date(2026, 11, 4), None),
)
BY_NAME = {v.name: v for v in VERSIONS}
WARN_DAYS = 30

# Attribution windows Meta returns as extra keys of each action, in Meta's order.
SERVED_WINDOWS = ("1d_click", "7d_click", "28d_click", "1d_view", "1d_ev")
# Windows Meta stopped returning, and since when: asking for them silently yields nothing.
RETIRED_WINDOWS = {"7d_view": date(2026, 1, 12), "28d_view": date(2026, 1, 12)}


class VersionStatus(StrEnum):
    SUPPORTED = "supported"
    EXPIRING = "expiring"  # expires within WARN_DAYS
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # not in the table: neither vouched for nor known to be dead


@dataclass(frozen=True)
class VersionReport:
    version: str
    status: VersionStatus
    expires: date | None

    def describe(self) -> str:
        when = f" on {self.expires}" if self.expires else ""
        match self.status:
            case VersionStatus.SUPPORTED:
                return f"Marketing API {self.version} is supported" + (
                    f" until {self.expires}" if self.expires else ""
                )
            case VersionStatus.EXPIRING:
                return f"Marketing API {self.version} expires{when}: set META_API_VERSION newer"
            case VersionStatus.EXPIRED:
                return (
                    f"Marketing API {self.version} expired{when}; Meta answers it as a newer "
                    "version: set META_API_VERSION to a supported one"
                )
        return f"Marketing API {self.version} is not in the table of known versions"


def version_status(version: str, today: date) -> VersionReport:
    """`version`'s status on `today`: it expires at the start of its expiry date."""
    known = BY_NAME.get(version)
    if known is None:
        return VersionReport(version, VersionStatus.UNKNOWN, None)
    if known.expires is None:
        return VersionReport(version, VersionStatus.SUPPORTED, None)
    if today >= known.expires:
        status = VersionStatus.EXPIRED
    elif today >= known.expires - timedelta(days=WARN_DAYS):
        status = VersionStatus.EXPIRING
    else:
        status = VersionStatus.SUPPORTED
    return VersionReport(version, status, known.expires)
