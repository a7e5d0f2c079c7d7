"""The console_sessions table (service/web's login): only the SHA-256 of a cookie's secret is stored."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from service.db.sql import Statement, Transaction, time_value

if TYPE_CHECKING:
    from service.db.session import Database

_PRUNE = Statement("DELETE FROM console_sessions WHERE expires_at <= :now")
_INSERT = Statement(
    "INSERT INTO console_sessions (secret_hash, token_id, created_at, expires_at)"
    " VALUES (:secret_hash, :token_id, :created_at, :expires_at)"
)
_GET = Statement("SELECT token_id, expires_at FROM console_sessions WHERE secret_hash = :secret_hash")
_DELETE = Statement("DELETE FROM console_sessions WHERE secret_hash = :secret_hash")


def open_session(
    transaction: Transaction, secret_hash: str, token_id: str, now: dt.datetime, expires_at: dt.datetime
) -> None:
    """A new session; those that ended are dropped on the way."""
    transaction.execute(_PRUNE, {"now": transaction.time(now)})
    params = {
        "secret_hash": secret_hash,
        "token_id": token_id,
        "created_at": transaction.time(now),
        "expires_at": transaction.time(expires_at),
    }
    transaction.execute(_INSERT, params)


def find(db: Database, secret_hash: str) -> tuple[str, dt.datetime] | None:
    """(token id, expires_at) of a session."""
    row = db.query(_GET, {"secret_hash": secret_hash}).fetchone()
    return None if row is None else (row[0], time_value(row[1]))  # type: ignore[return-value]


def close(transaction: Transaction, secret_hash: str) -> None:
    transaction.execute(_DELETE, {"secret_hash": secret_hash})
