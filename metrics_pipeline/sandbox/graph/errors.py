"""Graph API error answers: the status and the JSON body Meta sends with them."""

from __future__ import annotations

from metrics_pipeline.sandbox.faults import ERROR_FAULTS

# Error codes that mean "slow down": they come with usage headers saying when to return.
THROTTLING_CODES = frozenset({4, 17, 32, 613, 80004})


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        subcode: int | None = None,
        error_type: str = "OAuthException",
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {
            "error": {
                "message": message,
                "type": error_type,
                "code": code,
                "is_transient": transient,
                "fbtrace_id": "AsandboxTrace",
                **({"error_subcode": subcode} if subcode is not None else {}),
            }
        }

    @property
    def throttling(self) -> bool:
        return self.body["error"]["code"] in THROTTLING_CODES


def fault_error(kind: str) -> ApiError:
    """The error an ERROR_FAULTS fault answers with."""
    status, code, subcode, transient, message = ERROR_FAULTS[kind]
    return ApiError(status, code, message, subcode=subcode, transient=transient)
