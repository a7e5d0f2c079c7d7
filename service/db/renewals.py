"""The renewal_token_uses table: each renewal token's jti is good once."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from service.db.sql import Statement, Transaction

if TYPE_CHECKING:
    from service.db.session import Database

_USED = Statement("SELECT 1 FROM renewal_token_uses WHERE serial = :serial AND jti = :jti")
_USE = Statement(
    "INSERT INTO renewal_token_uses (serial, jti, expires_at, used_at)"
    " VALUES (:serial, :jti, :expires_at, :now) ON CONFLICT DO NOTHING RETURNING jti"
)
_PRUNE = Statement("DELETE FROM renewal_token_uses WHERE expires_at < :now")


def is_used(db: Database, serial: str, jti: str) -> bool:
    return db.query(_USED, {"serial": serial, "jti": jti}).fetchone() is not None


def use(transaction: Transaction, serial: str, jti: str, expires_at: dt.datetime, now: dt.datetime) -> bool:
    """Records a renewal token's jti as spent: False when it was spent already (a replay, perhaps from another
    worker at the same moment: the primary key decides). Rows of tokens that expired are dropped on the way."""
    transaction.execute(_PRUNE, {"now": transaction.time(now)})
    params = {"serial": serial, "jti": jti, "expires_at": transaction.time(expires_at), "now": transaction.time(now)}
    return transaction.execute(_USE, params).fetchone() is not None
