"""The certificates table: one function per operation, for the hot path and the cold one alike."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from service.db.models import CertificateRecord
from service.db.sql import Statement, Transaction, time_param, time_value

if TYPE_CHECKING:
    from service.db.session import Database


@dataclass(frozen=True)
class CertificateRow:
    """A certificate's row, as stored (its CRL entry left out)."""

    id: int
    serial: str
    cn: str
    subject: str
    sans: tuple[str, ...]
    profile: str
    not_before: dt.datetime
    not_after: dt.datetime
    status: str  # valid | revoked
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    fingerprint_sha256: str
    issued_by: str | None
    issued_via: str | None
    created_at: dt.datetime
    der: bytes
    issuer_id: str | None


def row_of(r: CertificateRecord) -> CertificateRow:
    return CertificateRow(
        r.id,
        r.serial,
        r.cn,
        r.subject,
        tuple(r.sans),
        r.profile,
        r.not_before,
        r.not_after,
        r.status,
        r.revoked_at,
        r.revocation_reason,
        r.fingerprint_sha256,
        r.issued_by,
        r.issued_via,
        r.created_at,
        r.der,
        r.issuer_id,
    )


_INSERT = Statement(
    "INSERT INTO certificates (serial, cn, subject, sans, profile, not_before, not_after, status,"
    " fingerprint_sha256, issued_by, issued_via, created_at, der, issuer_id) VALUES (:serial, :cn, :subject,"
    " :sans, :profile, :not_before, :not_after, :status, :fingerprint_sha256, :issued_by, :issued_via,"
    " :created_at, :der, :issuer_id)",
    # psycopg sends text; json has no implicit cast from it
    postgresql="INSERT INTO certificates (serial, cn, subject, sans, profile, not_before, not_after, status,"
    " fingerprint_sha256, issued_by, issued_via, created_at, der, issuer_id) VALUES (:serial, :cn, :subject,"
    " CAST(:sans AS JSON), :profile, :not_before, :not_after, :status, :fingerprint_sha256, :issued_by,"
    " :issued_via, :created_at, :der, :issuer_id)",
)
_IDENTITY = Statement("SELECT status, profile, fingerprint_sha256 FROM certificates WHERE serial = :serial")
_ISSUED_SINCE = Statement(
    "SELECT count(*), min(created_at) FROM certificates WHERE issued_by = :issued_by AND created_at > :since"
)


def insert(transaction: Transaction, values: Mapping[str, Any]) -> None:
    """A new certificate's row: the columns above, by name (`issuer_id` may be left out)."""
    params = dict(values)
    for key in ("not_before", "not_after", "created_at"):
        params[key] = transaction.time(params[key])
    params["sans"] = json.dumps(list(params["sans"]))
    params.setdefault("issuer_id", None)
    transaction.execute(_INSERT, params)


def identity_state(db: Database, serial: str) -> tuple[str, str, str] | None:
    """(status, profile, fingerprint_sha256) by the unique serial index: the per-request edge check."""
    row = db.query(_IDENTITY, {"serial": serial}).fetchone()
    return (row[0], row[1], row[2]) if row is not None else None


def issued_since(db: Database, issued_by: str, since: dt.datetime) -> tuple[int, dt.datetime | None]:
    """How many certificates `issued_by` had issued after `since`, and when the first of them was."""
    row = db.query(_ISSUED_SINCE, {"issued_by": issued_by, "since": time_param(since, db.postgres)})
    count, first = row.fetchone()
    return int(count), time_value(first)


def revocation_state(db: Database, serial: str) -> tuple[str, dt.datetime | None, str | None, str | None] | None:
    """(status, revoked_at, reason, issuer id) by the unique serial index, for OCSP (which answers only for the
    issuer asked about); None if we never issued it."""
    query = select(
        CertificateRecord.status,
        CertificateRecord.revoked_at,
        CertificateRecord.revocation_reason,
        CertificateRecord.issuer_id,
    ).where(CertificateRecord.serial == serial)
    with db.reader() as session:
        row = session.execute(query).first()
    return (row[0], row[1], row[2], row[3]) if row is not None else None


def get(db: Database, serial: str) -> CertificateRow | None:
    with db.reader() as session:
        record = session.scalars(select(CertificateRecord).where(CertificateRecord.serial == serial)).first()
        return row_of(record) if record is not None else None


def page(
    db: Database,
    *,
    now: dt.datetime,
    cn: str | None = None,
    status: str | None = None,
    expires_before: dt.datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[CertificateRow]:
    """Newest first (by id, a stable order), `limit` rows older than `before_id`."""
    query = select(CertificateRecord).order_by(CertificateRecord.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(CertificateRecord.id < before_id)
    if cn is not None:
        query = query.where(CertificateRecord.cn == cn)
    if status == "revoked":
        query = query.where(CertificateRecord.status == "revoked")
    elif status == "valid":
        query = query.where(CertificateRecord.status == "valid", CertificateRecord.not_after > now)
    elif status == "expired":
        query = query.where(CertificateRecord.status == "valid", CertificateRecord.not_after <= now)
    if expires_before is not None:
        query = query.where(CertificateRecord.not_after < expires_before)
    with db.reader() as session:
        return [row_of(r) for r in session.scalars(query)]


def get_for_update(transaction: Transaction, serial: str) -> CertificateRow | None:
    """Locks the row (PostgreSQL; SQLite's write lock already covers it) for read-then-write."""
    query = select(CertificateRecord).where(CertificateRecord.serial == serial).with_for_update()
    record = transaction.session.scalars(query).first()
    return row_of(record) if record is not None else None


def mark_revoked(
    transaction: Transaction, serial: str, revoked_at: dt.datetime, reason: str, crl_entry: bytes
) -> CertificateRow:
    """Revokes the certificate, its CRL entry (DER) stored with it; returns the row as it now is."""
    record = transaction.session.scalars(select(CertificateRecord).where(CertificateRecord.serial == serial)).one()
    record.status, record.revoked_at, record.revocation_reason = "revoked", revoked_at, reason
    record.crl_entry = crl_entry
    return row_of(record)


def count(db: Database) -> int:
    with db.reader() as session:
        return int(session.scalar(select(func.count()).select_from(CertificateRecord)) or 0)


def latest_expiry(db: Database, issuer_id: str) -> dt.datetime | None:
    """When the last certificate `issuer_id` signed expires: until then it keeps its CRL and OCSP."""
    query = select(func.max(CertificateRecord.not_after)).where(CertificateRecord.issuer_id == issuer_id)
    with db.reader() as session:
        return session.scalar(query)


def iter_revoked_unexpired(session: Session, now: dt.datetime) -> Iterator[tuple[str, dt.datetime, str]]:
    """(serial, revoked_at, reason) of each revoked, unexpired certificate, as datetimes (bench/crl_child.py's
    breakdown); inside a session already open."""
    query = (
        select(CertificateRecord.serial, CertificateRecord.revoked_at, CertificateRecord.revocation_reason)
        .where(CertificateRecord.status == "revoked", CertificateRecord.not_after > now)
        .order_by(CertificateRecord.id)
        .execution_options(yield_per=10_000)
    )
    for serial, revoked_at, reason in session.execute(query):
        assert revoked_at is not None  # revoke() sets both status and time
        yield serial, revoked_at, reason or "unspecified"


def iter_crl_entries(
    session: Session, now: dt.datetime, issuer_id: str | None = None
) -> Iterator[bytes | tuple[str, str, str | None]]:
    """Each revoked, unexpired certificate's stored CRL entry (DER); for rows revoked before entries were
    stored, (serial, revoked_at text, reason) to encode. Only `issuer_id`'s when given. Inside a session already
    open (a CRL build's snapshot), streamed."""
    query = (
        select(CertificateRecord.crl_entry)
        .where(CertificateRecord.status == "revoked", CertificateRecord.not_after > now)
        .order_by(CertificateRecord.id)
        .execution_options(yield_per=50_000)
    )
    if issuer_id is not None:
        query = query.where(CertificateRecord.issuer_id == issuer_id)
    missing = False
    for (entry,) in session.connection().execute(query):
        if entry is None:
            missing = True
        else:
            yield entry
    if missing:  # rare (older rows): the slow path, for exactly those
        yield from iter_revoked_for_crl(session, now, without_entry=True, issuer_id=issuer_id)


def iter_revoked_for_crl(
    session: Session, now: dt.datetime, *, without_entry: bool = False, issuer_id: str | None = None
) -> Iterator[tuple[str, str, str | None]]:
    """(serial, revoked_at as ISO-8601 UTC text, reason or None) for ca.crl.encode_revoked_entry: Core rows and
    no datetime objects. SQLite stores UTC text ('YYYY-MM-DD HH:MM:SS.ffffff', see db.base.UTCDateTime), read
    as is; PostgreSQL's driver returns datetimes, formatted here."""
    query = (
        select(
            CertificateRecord.serial,
            type_coerce(CertificateRecord.revoked_at, String),  # no result processing: SQLite's text as stored
            CertificateRecord.revocation_reason,
        )
        .where(CertificateRecord.status == "revoked", CertificateRecord.not_after > now)
        .order_by(CertificateRecord.id)
        .execution_options(yield_per=20_000)
    )
    if without_entry:
        query = query.where(CertificateRecord.crl_entry.is_(None))
    if issuer_id is not None:
        query = query.where(CertificateRecord.issuer_id == issuer_id)
    for serial, revoked_at, reason in session.connection().execute(query):
        stored: object = revoked_at
        if isinstance(stored, dt.datetime):  # psycopg returns aware datetimes whatever the coercion says
            yield serial, stored.astimezone(dt.UTC).isoformat(" "), reason
        else:
            yield serial, revoked_at, reason
