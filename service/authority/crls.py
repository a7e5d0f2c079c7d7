"""The CRL: built off the cached copy in the database, so every worker serves the same bytes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.authority.values import CRLDocument
from service.ca.crl import RevokedEntry, build_crl
from service.ca.inspect import parse_serial
from service.ca.issue import Signer
from service.db.models import CRLRecord
from service.db.repositories import REVOCATIONS, CertificateRepository, CounterRepository, CRLRepository
from service.db.session import Database

DEFAULT_CRL_LIFETIME = dt.timedelta(days=7)


class CRLPublisher:
    def __init__(
        self,
        db: Database,
        signer: Signer,
        issuer: x509.Certificate,
        *,
        lifetime: dt.timedelta,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.db = db
        self.signer = signer
        self.issuer = issuer
        self.lifetime = lifetime
        self.clock = clock

    def current(self) -> CRLDocument:
        """The newest CRL; rebuilt when a revocation happened since, or past half its lifetime."""
        with self.db.reader() as session:
            latest = CRLRepository(session).latest()
            revision = CounterRepository(session).get(REVOCATIONS)
        if latest is not None and self._is_fresh(latest, revision):
            return _document(latest)
        with self.db.writer() as session:  # the write lock makes concurrent rebuilders queue, then reuse
            crls = CRLRepository(session)
            latest = crls.latest()
            revision = CounterRepository(session).get(REVOCATIONS)
            if latest is not None and self._is_fresh(latest, revision):
                return _document(latest)
            now = self.clock()
            entries = [
                RevokedEntry(parse_serial(serial), revoked_at, reason)
                for serial, revoked_at, reason in CertificateRepository(session).iter_revoked_unexpired(now)
            ]
            number = (latest.number + 1) if latest is not None else 1
            next_update = now + self.lifetime
            crl = build_crl(self.signer, self.issuer, entries, number=number, this_update=now, next_update=next_update)
            record = CRLRecord(
                number=number,
                this_update=now,
                next_update=next_update,
                revision=revision,
                der=crl.public_bytes(Encoding.DER),
            )
            crls.add(record)
        return _document(record)

    def _is_fresh(self, crl: CRLRecord, revision: int) -> bool:
        half_life = (crl.next_update - crl.this_update) / 2
        return crl.revision == revision and self.clock() < crl.this_update + half_life


def _document(record: CRLRecord) -> CRLDocument:
    return CRLDocument(
        number=record.number, this_update=record.this_update, next_update=record.next_update, der=record.der
    )
