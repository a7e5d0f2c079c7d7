"""The tokens table: one function per operation, for the hot path and the cold one alike."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from service.db.models import TokenRecord
from service.db.sql import Statement, Transaction, json_value, time_value

if TYPE_CHECKING:
    from service.db.session import Database


@dataclass(frozen=True)
class TokenRow:
    id: str
    secret_hash: str
    scope: str
    cn: str | None
    sans: list[str] | None
    profile: str | None
    expires_at: dt.datetime | None
    uses_left: int | None
    created_at: dt.datetime | None = None  # read by `every` only (the hot read leaves it out)


_GET = Statement("SELECT id, secret_hash, scope, cn, sans, profile, expires_at, uses_left FROM tokens WHERE id = :id")
_USABLE = Statement(
    "SELECT uses_left FROM tokens WHERE id = :id AND (expires_at IS NULL OR expires_at > :now)"
    " AND (uses_left IS NULL OR uses_left > 0)"
)
_CONSUME = Statement(
    "UPDATE tokens SET uses_left = uses_left - 1 WHERE id = :id AND uses_left > 0 RETURNING uses_left"
)
_INSERT = Statement(
    "INSERT INTO tokens (id, secret_hash, scope, cn, sans, profile, expires_at, uses_left, created_at)"
    " VALUES (:id, :secret_hash, :scope, :cn, :sans, :profile, :expires_at, :uses_left, :created_at)",
    postgresql="INSERT INTO tokens (id, secret_hash, scope, cn, sans, profile, expires_at, uses_left, created_at)"
    " VALUES (:id, :secret_hash, :scope, :cn, CAST(:sans AS JSON), :profile, :expires_at, :uses_left, :created_at)",
)
_DELETE = Statement("DELETE FROM tokens WHERE id = :id RETURNING id")
_WITH_SCOPE = Statement("SELECT 1 FROM tokens WHERE scope = :scope LIMIT 1")


def _row(row: tuple[object, ...]) -> TokenRow:
    return TokenRow(
        id=row[0],  # type: ignore[arg-type]
        secret_hash=row[1],  # type: ignore[arg-type]
        scope=row[2],  # type: ignore[arg-type]
        cn=row[3],  # type: ignore[arg-type]
        sans=json_value(row[4]),
        profile=row[5],  # type: ignore[arg-type]
        expires_at=time_value(row[6]),
        uses_left=row[7],  # type: ignore[arg-type]
    )


def get(db: Database, token_id: str) -> TokenRow | None:
    """By id, on this thread's autocommit connection: the per-request read of bearer authentication."""
    row = db.query(_GET, {"id": token_id}).fetchone()
    return None if row is None else _row(row)


def consume(transaction: Transaction, token_id: str, now: dt.datetime) -> tuple[bool, int | None]:
    """Takes one use: (False, None) when the token is gone, expired or used up; else (True, uses left afterwards,
    None meaning unlimited). Inside a write transaction (writers take turns, see Database.raw_writer), so the check
    and the use are one step. A token without a use count is only checked: no row written, no page to commit."""
    row = transaction.execute(_USABLE, {"id": token_id, "now": transaction.time(now)}).fetchone()
    if row is None:
        return False, None
    if row[0] is None:
        return True, None
    row = transaction.execute(_CONSUME, {"id": token_id}).fetchone()
    return (False, None) if row is None else (True, row[0])


def add(transaction: Transaction, token: TokenRow) -> None:
    params = {
        "id": token.id,
        "secret_hash": token.secret_hash,
        "scope": token.scope,
        "cn": token.cn,
        "sans": json.dumps(None if token.sans is None else list(token.sans)),  # JSON null, as the ORM stores None
        "profile": token.profile,
        "expires_at": None if token.expires_at is None else transaction.time(token.expires_at),
        "uses_left": token.uses_left,
        "created_at": transaction.time(token.created_at),  # type: ignore[arg-type]
    }
    transaction.execute(_INSERT, params)


def delete(transaction: Transaction, token_id: str) -> bool:
    """False when there was no such token."""
    return transaction.execute(_DELETE, {"id": token_id}).fetchone() is not None


def any_with_scope(db: Database, scope: str) -> bool:
    return db.query(_WITH_SCOPE, {"scope": scope}).fetchone() is not None


def every(db: Database) -> list[TokenRow]:
    """All tokens, oldest first."""
    with db.reader() as session:
        records = session.scalars(select(TokenRecord).order_by(TokenRecord.created_at, TokenRecord.id))
        return [
            TokenRow(r.id, r.secret_hash, r.scope, r.cn, r.sans, r.profile, r.expires_at, r.uses_left, r.created_at)
            for r in records
        ]

