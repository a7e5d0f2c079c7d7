"""Queries. Repositories add and flush; they never commit (the authority owns the transaction)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from service.db.counters import CRL_FLOOR, REVOCATIONS, value_in
from service.db.models import CertificateRecord, CounterRecord

__all__ = ["CRL_FLOOR", "REVOCATIONS", "CertificateRepository", "CounterRepository"]


class CertificateRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def count(self) -> int:
        return int(self._session.scalar(select(func.count()).select_from(CertificateRecord)) or 0)

    def latest_expiry(self, issuer_id: str) -> dt.datetime | None:
        """When the last certificate `issuer_id` signed expires: until then it keeps its CRL and OCSP."""
        return self._session.scalar(
            select(func.max(CertificateRecord.not_after)).where(CertificateRecord.issuer_id == issuer_id)
        )

    def iter_revoked_unexpired(self, now: dt.datetime) -> Iterator[tuple[str, dt.datetime, str]]:
        query = (
            select(CertificateRecord.serial, CertificateRecord.revoked_at, CertificateRecord.revocation_reason)
            .where(CertificateRecord.status == "revoked", CertificateRecord.not_after > now)
            .order_by(CertificateRecord.id)
            .execution_options(yield_per=10_000)
        )
        for serial, revoked_at, reason in self._session.execute(query):
            assert revoked_at is not None  # revoke() sets both status and time
            yield serial, revoked_at, reason or "unspecified"

    def iter_crl_entries(
        self, now: dt.datetime, issuer_id: str | None = None
    ) -> Iterator[bytes | tuple[str, str, str | None]]:
        """Each revoked, unexpired certificate's stored CRL entry (DER); for rows revoked before entries were
        stored, (serial, revoked_at text, reason) to encode. Only `issuer_id`'s when given."""
        query = (
            select(CertificateRecord.crl_entry)
            .where(CertificateRecord.status == "revoked", CertificateRecord.not_after > now)
            .order_by(CertificateRecord.id)
            .execution_options(yield_per=50_000)
        )
        if issuer_id is not None:
            query = query.where(CertificateRecord.issuer_id == issuer_id)
        missing = False
        for (entry,) in self._session.connection().execute(query):
            if entry is None:
                missing = True
            else:
                yield entry
        if missing:  # rare (older rows): the slow path, for exactly those
            yield from self.iter_revoked_for_crl(now, without_entry=True, issuer_id=issuer_id)

    def iter_revoked_for_crl(
        self, now: dt.datetime, *, without_entry: bool = False, issuer_id: str | None = None
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
        for serial, revoked_at, reason in self._session.connection().execute(query):
            stored: object = revoked_at
            if isinstance(stored, dt.datetime):  # psycopg returns aware datetimes whatever the coercion says
                yield serial, stored.astimezone(dt.UTC).isoformat(" "), reason
            else:
                yield serial, revoked_at, reason


class CounterRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, name: str) -> int:
        return value_in(self._session, name)

    def set(self, name: str, value: int) -> None:
        self._session.merge(CounterRecord(name=name, value=value))
        self._session.flush()
