"""What a failed `pocketca` command prints, and its exit code: one table, so every command (and every command
added later) fails the same way -- one line that says what to do, never a traceback.

Exit codes (CONTRACT.md): 2 usage, configuration or local file; 3 cannot connect (server or database) or TLS;
4 refused (the server's 4xx, or the local authority's policy); 5 the server failed (5xx).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from pydantic import ValidationError

from service.errors import ConfigurationError, ServiceError, UnreachableError
from service.settings import flag, variable

USAGE, CONFIGURATION, CONNECT, REFUSED, SERVER_FAILED = 2, 2, 3, 4, 5


@dataclass(frozen=True)
class Failure:
    code: int
    lines: list[str]


def explain(exc: BaseException, flags: frozenset[str] = frozenset()) -> Failure | None:
    """The failure for `exc`, or None for a bug (which then shows its traceback). `flags`: the settings fields
    given as flags, so a bad value blames the flag and not the variable."""
    if isinstance(exc, ConfigurationError):
        return Failure(CONFIGURATION, [str(exc)])
    if isinstance(exc, UnreachableError):
        return Failure(CONNECT, [str(exc)])
    if isinstance(exc, ServiceError):
        return Failure(REFUSED, [exc.detail])
    if isinstance(exc, ValidationError):
        return Failure(CONFIGURATION, _validation_lines(exc, flags))
    if isinstance(exc, OSError) and exc.filename is not None:
        return Failure(CONFIGURATION, [f"{exc.filename}: {exc.strerror or exc}"])
    if isinstance(exc, KeyboardInterrupt):
        return Failure(130, ["interrupted"])
    return _client_failure(exc) or _database_failure(exc)


def _validation_lines(exc: ValidationError, flags: frozenset[str]) -> list[str]:
    lines = []
    for error in exc.errors(include_input=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        source = flag(field) if field in flags else f"setting {variable(field)}"
        lines.append(f"{source}: {error['msg']}")
    return lines


def _client_failure(exc: BaseException) -> Failure | None:
    """httpx and the client are imported only by the commands that talk to a server, so `pocketca serve`
    starts without them (bench/SPEED.md)."""
    if "service.client" not in sys.modules:
        return None
    from service.client import ClientError

    if isinstance(exc, ClientError):
        return Failure(SERVER_FAILED if exc.status >= 500 else REFUSED, [str(exc)])
    return None


def _database_failure(exc: BaseException) -> Failure | None:
    if "sqlalchemy" not in sys.modules:
        return None
    from service.db.sql import DatabaseUnreachable as OperationalError

    if isinstance(exc, OperationalError):
        return Failure(CONNECT, [database_unreachable(str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc))])
    return None


def database_unreachable(reason: str) -> str:
    return f"cannot use the database (POCKETCA_DATABASE_URL, --database-url): {reason}"
