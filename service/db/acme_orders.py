"""The acme_orders table (RFC 8555 §7.4). Reads return plain values; writes take the change's Transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from service.db.acme import AcmeOrderRecord
from service.db.sql import Transaction

if TYPE_CHECKING:
    from service.db.session import Database

LISTED = ("pending", "ready", "processing", "valid")


@dataclass(frozen=True)
class OrderRow:
    id: str
    account_id: str
    status: str
    identifiers: list[dict[str, str]]
    authorization_ids: list[str]
    profile: str
    expires_at: dt.datetime
    error: dict[str, Any] | None = None
    certificate_serial: str | None = None


def _row(r: AcmeOrderRecord) -> OrderRow:
    return OrderRow(
        r.id,
        r.account_id,
        r.status,
        list(r.identifiers),
        list(r.authorization_ids),
        r.profile,
        r.expires_at,
        r.error,
        r.certificate_serial,
    )


def add(transaction: Transaction, order: OrderRow, *, created_at: dt.datetime, created_from: str | None) -> None:
    transaction.session.add(
        AcmeOrderRecord(
            id=order.id,
            account_id=order.account_id,
            status=order.status,
            identifiers=order.identifiers,
            authorization_ids=order.authorization_ids,
            profile=order.profile,
            expires_at=order.expires_at,
            error=order.error,
            certificate_serial=order.certificate_serial,
            created_at=created_at,
            created_from=created_from,
        )
    )


def get(transaction: Transaction, order_id: str) -> OrderRow | None:
    record = transaction.session.get(AcmeOrderRecord, order_id)
    return _row(record) if record is not None else None


def save(transaction: Transaction, order: OrderRow) -> None:
    """Writes an order's status, error and certificate serial."""
    record = transaction.session.get(AcmeOrderRecord, order.id)
    assert record is not None
    record.status, record.error, record.certificate_serial = order.status, order.error, order.certificate_serial


def move(transaction: Transaction, order_id: str, *, to: str, only_from: str | None = None) -> bool:
    """Sets the status (only when it is `only_from`, if given); False when no order moved."""
    statement = update(AcmeOrderRecord).where(AcmeOrderRecord.id == order_id)
    if only_from is not None:
        statement = statement.where(AcmeOrderRecord.status == only_from)
    return bool(transaction.session.execute(statement.values(status=to)).rowcount)


def listed_ids(db: Database, account_id: str, limit: int = 100) -> list[str]:
    """The account's orders that are not invalid, newest first."""
    with db.reader() as session:
        return list(
            session.scalars(
                select(AcmeOrderRecord.id)
                .where(AcmeOrderRecord.account_id == account_id, AcmeOrderRecord.status.in_(LISTED))
                .order_by(AcmeOrderRecord.created_at.desc())
                .limit(limit)
            ).all()
        )


def ordered_certificate(db: Database, account_id: str, serial: str) -> bool:
    """Whether one of the account's orders issued the certificate."""
    with db.reader() as session:
        found = session.scalar(
            select(AcmeOrderRecord.id)
            .where(AcmeOrderRecord.certificate_serial == serial, AcmeOrderRecord.account_id == account_id)
            .limit(1)
        )
    return found is not None


def nth_newest_of_account(
    transaction: Transaction, account_id: str, since: dt.datetime, n: int
) -> dt.datetime | None:
    """When the n-th newest order of the account made after `since` was made (None: fewer than n)."""
    return _nth_newest(transaction, AcmeOrderRecord.account_id == account_id, since, n)


def nth_newest_from(transaction: Transaction, created_from: str, since: dt.datetime, n: int) -> dt.datetime | None:
    """When the n-th newest order from this address made after `since` was made (None: fewer than n)."""
    return _nth_newest(transaction, AcmeOrderRecord.created_from == created_from, since, n)


def _nth_newest(transaction: Transaction, where: Any, since: dt.datetime, n: int) -> dt.datetime | None:
    created_at = AcmeOrderRecord.created_at
    query = select(created_at).where(where, created_at > since).order_by(created_at.desc()).offset(n - 1).limit(1)
    return transaction.session.scalar(query)  # type: ignore[no-any-return]
