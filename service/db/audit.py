"""The audit_events table: a row in the transaction of each change, and pages of them, newest first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from service.db.models import AuditRecord
from service.db.sql import Statement, Transaction

if TYPE_CHECKING:
    from service.db.session import Database


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: dt.datetime
    action: str
    outcome: str
    actor: str
    token_id: str | None
    serial: str | None
    client_address: str | None
    detail: str | None


_INSERT = Statement(
    "INSERT INTO audit_events (at, action, outcome, actor, token_id, serial, client_address, detail)"
    " VALUES (:at, :action, :outcome, :actor, :token_id, :serial, :client_address, :detail) RETURNING id"
)


def insert(transaction: Transaction, values: Mapping[str, Any]) -> int:
    """The row (AuditRow's fields but `id`); returns the new row's id."""
    params = dict(values)
    params["at"] = transaction.time(params["at"])
    return int(transaction.execute(_INSERT, params).fetchone()[0])


def page(db: Database, *, before_id: int | None = None, limit: int = 100) -> list[AuditRow]:
    query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditRecord.id < before_id)
    with db.reader() as session:
        return [
            AuditRow(r.id, r.at, r.action, r.outcome, r.actor, r.token_id, r.serial, r.client_address, r.detail)
            for r in session.scalars(query)
        ]
