"""The counters table: named integers (the revocation count CRLs are built against, the CRL number floor)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.db.models import CounterRecord
from service.db.sql import Transaction

if TYPE_CHECKING:
    from service.db.session import Database

REVOCATIONS = "revocations"
CRL_FLOOR = "crl_floor"  # the next CRL number is at least this: a restore sets it, so numbers never go back


def get(db: Database, name: str) -> int:
    with db.reader() as session:
        return value_in(session, name)


def value_in(session: Session, name: str) -> int:
    """`get` inside a session already open (a backup's, a CRL build's snapshot)."""
    return session.scalar(select(CounterRecord.value).where(CounterRecord.name == name)) or 0


def set(transaction: Transaction, name: str, value: int) -> None:
    """Sets the counter outright (a restore's CRL number floor)."""
    transaction.session.merge(CounterRecord(name=name, value=value))
    transaction.session.flush()


def increment(transaction: Transaction, name: str) -> None:
    """Atomic in the database (UPDATE value = value + 1), so concurrent writers never lose a count."""
    session = transaction.session
    result = session.execute(
        update(CounterRecord).where(CounterRecord.name == name).values(value=CounterRecord.value + 1)
    )
    if result.rowcount == 0:
        session.add(CounterRecord(name=name, value=1))
    session.flush()
