"""What a Graph API error means, and so what the client does about it."""

from __future__ import annotations

from enum import Enum
from typing import Any

THROTTLING_CODES = {4, 17, 32, 613, *range(80000, 80015)}
TRANSIENT_CODES = {1, 2}
PERMISSION_CODES = {10, *range(200, 300)}
AUTH_CODES = {102, 190}
REDUCE_DATA_SUBCODES = {1487534}
REDUCE_DATA_TEXT = "reduce the amount of data"


class ErrorKind(Enum):
    THROTTLED = "throttled"  # wait as the usage headers say, then retry
    TRANSIENT = "transient"  # retry with exponential backoff and jitter
    REDUCE_DATA = "reduce_data"  # retry with a smaller page or range
    AUTH = "auth"  # never retry
    PERMISSION = "permission"  # never retry
    INVALID = "invalid"  # never retry: a bug or a bad configuration
    UNREACHABLE = "unreachable"  # the host refused or never answered the connection


RETRYABLE = {ErrorKind.THROTTLED, ErrorKind.TRANSIENT}
# Failures that a later attempt of the same configuration cannot fix.
CONFIGURATION_KINDS = {
    ErrorKind.AUTH,
    ErrorKind.PERMISSION,
    ErrorKind.INVALID,
    ErrorKind.UNREACHABLE,
}


def classify(status: int, error: dict[str, Any]) -> ErrorKind:
    code = error.get("code")
    subcode = error.get("error_subcode")
    message = str(error.get("message", "")).lower()
    if REDUCE_DATA_TEXT in message or subcode in REDUCE_DATA_SUBCODES:
        return ErrorKind.REDUCE_DATA
    if code in THROTTLING_CODES:
        return ErrorKind.THROTTLED
    if code in AUTH_CODES:
        return ErrorKind.AUTH
    if code in PERMISSION_CODES:
        return ErrorKind.PERMISSION
    if code in TRANSIENT_CODES or error.get("is_transient") is True or status >= 500:
        return ErrorKind.TRANSIENT
    return ErrorKind.INVALID


class MetaApiError(RuntimeError):
    """A Graph API failure, described with the client, the account and Meta's own text."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.subcode = subcode
        self.status = status


class ReduceDataError(MetaApiError):
    """Meta asked for a smaller request; the caller splits and asks again."""


def is_configuration_error(exc: BaseException | None) -> bool:
    """Whether `exc`, or any exception it was raised from or during, is a MetaApiError that
    retrying cannot fix (token, permission, invalid request, unreachable host)."""
    pending, seen = [exc], set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, MetaApiError) and current.kind in CONFIGURATION_KINDS:
            return True
        pending += [current.__cause__, current.__context__]
    return False
