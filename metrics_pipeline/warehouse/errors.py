"""Errors of the warehouse that a person can act on, each in one self-contained line."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

# PostgreSQL SQLSTATEs: statement_timeout cancelled the statement; lock_timeout expired.
QUERY_CANCELED = "57014"
LOCK_NOT_AVAILABLE = "55P03"


class WarehouseError(RuntimeError):
    """The warehouse could not do what a run asked of it."""


class WarehouseUnavailableError(WarehouseError):
    """No connection: a missing database, bad credentials, a refused or unreachable host."""


class WarehouseTimeoutError(WarehouseError):
    """A statement or a lock wait ran past its configured limit and was cancelled."""


def sqlstate(error: BaseException) -> str | None:
    """The PostgreSQL error code behind a SQLAlchemy error (psycopg2 or psycopg 3)."""
    original = error.orig if isinstance(error, DBAPIError) else error
    return getattr(original, "pgcode", None) or getattr(original, "sqlstate", None)


def clients_named(scope_clients: object) -> str:
    """`client 'x'`, `clients 'x', 'y'` or `all clients`, for messages."""
    if scope_clients is None:
        return "all clients"
    if isinstance(scope_clients, list | tuple | set | frozenset):
        names = sorted(map(str, scope_clients))
        if len(names) != 1:
            return "clients " + ", ".join(f"'{n}'" for n in names)
        scope_clients = names[0]
    return f"client '{scope_clients}'"
