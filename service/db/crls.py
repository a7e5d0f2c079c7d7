"""The crls table and the counters it is built against (revocations, the CRL number floor)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.db import certificates
from service.db.counters import CRL_FLOOR, REVOCATIONS, value_in
from service.db.models import CRLRecord
from service.db.sql import Statement, Transaction, time_value

if TYPE_CHECKING:
    from service.db.session import Database

_STATE = (
    # the counters are db.counters.REVOCATIONS and CRL_FLOOR
    "SELECT (SELECT value FROM counters WHERE name = 'revocations'),"
    " (SELECT value FROM counters WHERE name = 'crl_floor'),"
    " number, this_update, next_update, revision FROM (SELECT 1 AS one) AS anchor"
    " LEFT JOIN (SELECT number, this_update, next_update, revision FROM crls {where}ORDER BY number DESC"
    " LIMIT 1) AS newest ON 1 = 1"
)
_ANY_STATE = Statement(_STATE.format(where=""))
_ISSUER_STATE = Statement(_STATE.format(where="WHERE issuer_id = :issuer_id "))


def state(
    db: Database, issuer_id: str | None = None
) -> tuple[tuple[int, dt.datetime, dt.datetime, int] | None, int, int]:
    """(newest CRL's (number, this_update, next_update, revision) or None, revocations, floor) in one
    read: what the CRL refresher polls four times a second in every worker. Of one issuer when given."""
    if issuer_id is None:
        row = db.query(_ANY_STATE, {}).fetchone()
    else:
        row = db.query(_ISSUER_STATE, {"issuer_id": issuer_id}).fetchone()
    revisions, floor, number, this_update, next_update, built_for = row
    newest = None
    if number is not None:
        newest = (int(number), time_value(this_update), time_value(next_update), int(built_for))
    return newest, int(revisions or 0), int(floor or 0)  # type: ignore[return-value]


State = tuple[int, dt.datetime, dt.datetime, int]  # a CRL's (number, this_update, next_update, revision)


@dataclass(frozen=True)
class CRLRow:
    number: int
    this_update: dt.datetime
    next_update: dt.datetime
    revision: int  # the revocation counter this CRL reflects
    der: bytes
    issuer_id: str | None


def _latest_state(session: Session, issuer_id: str | None = None) -> State | None:
    query = select(CRLRecord.number, CRLRecord.this_update, CRLRecord.next_update, CRLRecord.revision)
    if issuer_id is not None:
        query = query.where(CRLRecord.issuer_id == issuer_id)
    row = session.execute(query.order_by(CRLRecord.number.desc()).limit(1)).first()
    return (row[0], row[1], row[2], row[3]) if row is not None else None


def latest_state(db: Database, issuer_id: str | None = None) -> State | None:
    """The newest CRL's (number, this_update, next_update, revision), of `issuer_id` when given, without its DER."""
    with db.reader() as session:
        return _latest_state(session, issuer_id)


def get(db: Database, number: int) -> CRLRow | None:
    with db.reader() as session:
        r = session.get(CRLRecord, number)
        return CRLRow(r.number, r.this_update, r.next_update, r.revision, r.der, r.issuer_id) if r else None


@dataclass(frozen=True)
class Snapshot:
    """What a CRL is built from, read in one transaction: the newest CRL's state, the counters, the entries."""

    state: State | None
    revision: int
    floor: int  # set by a restore, so numbers never go back
    _session: Session
    _issuer_id: str | None

    def entries(self, now: dt.datetime) -> Iterator[bytes | tuple[str, str, str | None]]:
        """Each revoked, unexpired certificate's stored CRL entry (DER), or (serial, revoked_at, reason) to encode."""
        return certificates.iter_crl_entries(self._session, now, self._issuer_id)


@contextmanager
def snapshot(db: Database, issuer_id: str | None) -> Iterator[Snapshot]:
    """One read snapshot: the revision first, so the entries cover at least it."""
    with db.reader() as session:
        state = _latest_state(session, issuer_id)
        revision = value_in(session, REVOCATIONS)
        floor = value_in(session, CRL_FLOOR)
        yield Snapshot(state, revision, floor, session, issuer_id)


def store(transaction: Transaction, crl: CRLRow, *, keep: int) -> CRLRow:
    """Stores a new CRL; only the newest `keep` of its issuer stay (at 1M revoked each one is ~50 MB). Numbers
    are one sequence over every issuer: a CRL of one issuer is numbered past the newest of any of them. Returns
    the CRL as stored."""
    session = transaction.session
    number = crl.number
    if crl.issuer_id is not None:
        newest = _latest_state(session)
        if newest is not None and newest[0] >= number:
            number = newest[0] + 1
    session.add(
        CRLRecord(
            number=number,
            this_update=crl.this_update,
            next_update=crl.next_update,
            revision=crl.revision,
            der=crl.der,
            issuer_id=crl.issuer_id,
        )
    )
    session.flush()
    query = select(CRLRecord.number)
    if crl.issuer_id is not None:
        query = query.where(CRLRecord.issuer_id == crl.issuer_id)
    numbers = list(session.scalars(query.order_by(CRLRecord.number.desc()).limit(keep)))
    if len(numbers) == keep:
        condition = CRLRecord.number < numbers[-1]
        if crl.issuer_id is not None:
            condition = condition & (CRLRecord.issuer_id == crl.issuer_id)
        session.execute(delete(CRLRecord).where(condition))
    return CRLRow(number, crl.this_update, crl.next_update, crl.revision, crl.der, crl.issuer_id)
