"""The acme_nonces table: nonces that were spent (service.authority.acme.nonces), kept until they expire."""

from __future__ import annotations

import datetime as dt

from service.db.sql import Statement, Transaction

_SPEND = Statement(
    "INSERT INTO acme_nonces (value, expires_at) VALUES (:value, :expires_at) ON CONFLICT DO NOTHING RETURNING value"
)
_DELETE_EXPIRED = Statement("DELETE FROM acme_nonces WHERE expires_at <= :now")


def spend(transaction: Transaction, value: str, expires_at: dt.datetime) -> bool:
    """Records a nonce as spent, in the caller's transaction; False when it already was (a replay)."""
    params = {"value": value, "expires_at": transaction.time(expires_at)}
    return transaction.execute(_SPEND, params).fetchone() is not None  # a row back: this insert made it


def delete_expired(transaction: Transaction, now: dt.datetime) -> None:
    transaction.execute(_DELETE_EXPIRED, {"now": transaction.time(now)})
