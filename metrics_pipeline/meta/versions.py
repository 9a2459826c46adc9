"""Marketing API versions Meta supports, what a configured version means on a date, and the
attribution windows Meta still returns.

Meta silently upgrades calls to an expired version instead of failing them, so a stale
default changes the meaning of the data without any error: the version is checked instead.
Update `VERSIONS` from Meta's changelog when a version is released or its expiry announced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


@dataclass(frozen=True)
class ApiVersion:
    name: str
    released: date
    expires: date | None  # None while Meta has not announced it


# Oldest first. A version older than the first one here expired before the table began.
VERSIONS: tuple[ApiVersion, ...] = (
    ApiVersion("v22.0", date(2025, 1, 21), date(2026, 2, 19)),
    ApiVersion("v23.0", date(2025, 5, 29), date(2026, 6, 9)),
    ApiVersion("v24.0", date(2025, 10, 8), date(2026, 11, 10)),
    ApiVersion("v25.0", date(2026, 2, 18), date(2027, 2, 23)),
    ApiVersion("v26.0", date(2026, 7, 29), None),
    ApiVersion("v27.0", date(2026, 11, 4), None),
)
BY_NAME = {v.name: v for v in VERSIONS}
OLDEST = VERSIONS[0]
WARN_DAYS = 30
_NAME = re.compile(r"v(\d{1,3})\.(\d{1,2})")


def version_number(name: str) -> tuple[int, int] | None:
    """(26, 0) for "v26.0"; None for anything that is not a version's name."""
    match = _NAME.fullmatch(name)
    return (int(match[1]), int(match[2])) if match else None


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
    expires: date | None  # for a version older than the table: the oldest one's expiry
    older_than_known: bool = False

    def describe(self) -> str:
        when = f" on {self.expires}" if self.expires else ""
        if self.older_than_known:
            return (
                f"Marketing API {self.version} is older than {OLDEST.name}, the oldest version "
                f"in meta/versions.py, which expired{when}; Meta answers it as a newer version: "
                "set META_API_VERSION to a supported one"
            )
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
        number = version_number(version)
        if number is not None and number < version_number(OLDEST.name):
            # Older than every version in the table: expired, whatever the date.
            return VersionReport(version, VersionStatus.EXPIRED, OLDEST.expires, True)
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


def supported_versions(today: date) -> list[str]:
    """The versions Meta still serves as themselves on `today`, oldest first."""
    expired = VersionStatus.EXPIRED
    return [v.name for v in VERSIONS if version_status(v.name, today).status is not expired]


def version_refusal(version: str, today: date) -> str | None:
    """Why `version` must not be used on `today` (expired, unknown or not a version's name),
    with what is accepted; None for a version Meta serves as itself."""
    report = version_status(version, today)
    if report.status in (VersionStatus.SUPPORTED, VersionStatus.EXPIRING):
        return None
    served = supported_versions(today)
    accepted = (
        f"accepted: {', '.join(served)} (the newest is {served[-1]})"
        if served
        else ("no version in meta/versions.py is still served: add the current one")
    )
    if version_number(version) is None:
        reason = "is not a Marketing API version (vNN.0)"
    elif report.older_than_known:
        reason = (
            f"is older than {OLDEST.name}, the oldest version this project knows (expired "
            f"{OLDEST.expires}): Meta answers it as a newer version"
        )
    elif report.status is VersionStatus.EXPIRED:
        reason = f"expired on {report.expires}: Meta answers it as a newer version"
    else:
        reason = "is not in meta/versions.py, the versions whose changes this project has reviewed"
    return f"{version!r} {reason}; {accepted}"


def version_name_problem(version: str) -> str | None:
    """Why `version` is not even a version's name, or None: a check that holds on any date."""
    if version_number(version) is not None:
        return None
    return f"{version!r} is not a Marketing API version; accepted: vNN.0, e.g. {VERSIONS[-1].name}"
