"""What the authority hands back: plain values, no ORM rows."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from cryptography import x509

from service.authority.callers import describe_issuer
from service.ca.inspect import CertificateSummary, der_to_pem
from service.ca.issue import Signer
from service.db.audit import AuditRow

T = TypeVar("T")


AuditEntry = AuditRow  # an audit event as the authority hands it on is the stored row: one shape, not two

@dataclass(frozen=True)
class Issuer:
    """A CA this service signs with: the current one issues; a retired one keeps its CRL and OCSP."""

    id: str  # service.ca.issue.issuer_id
    certificate: x509.Certificate
    signer: Signer
    parents: tuple[x509.Certificate, ...] = ()  # its issuer first, up to the root; () for a self-signed CA

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.certificate, *self.parents]


@dataclass(frozen=True)
class IssuedCertificate:
    certificate: x509.Certificate
    summary: CertificateSummary
    profile: str


@dataclass(frozen=True)
class StoredCertificate:
    certificate: x509.Certificate
    summary: CertificateSummary
    profile: str
    status: str  # valid | revoked | expired
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    issued_by: str | None = None  # the caller, as the audit log names it (token:<id>, cert:<serial>, acme:<id>...)
    issued_via: str | None = None  # token, enrollment, renewal, acme, console, local

    @property
    def issued_by_words(self) -> str:
        return describe_issuer(self.issued_by, self.issued_via)


@dataclass(frozen=True)
class CertificateListing:
    """A row of GET /certs, straight from the indexed columns (no DER parsing on a listing)."""

    serial: str
    cn: str
    subject: str
    sans: tuple[str, ...]
    profile: str
    status: str
    not_before: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    fingerprint_sha256: str
    issued_by: str | None = None
    issued_via: str | None = None

    @property
    def issued_by_words(self) -> str:
        return describe_issuer(self.issued_by, self.issued_via)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


@dataclass(frozen=True)
class CRLDocument:
    number: int
    this_update: dt.datetime
    next_update: dt.datetime
    der: bytes

    @functools.cached_property
    def pem(self) -> bytes:
        """Made once per CRL and worker: a 1M-entry CRL is tens of MB."""
        return der_to_pem(self.der, "X509 CRL").encode()


@dataclass(frozen=True)
class NewToken:
    token: str  # the secret: shown once, never stored
    id: str
    scope: str
    expires_at: dt.datetime | None


@dataclass(frozen=True)
class TokenInfo:
    id: str
    scope: str
    cn: str | None
    sans: tuple[str, ...]
    profile: str | None
    expires_at: dt.datetime | None
    uses_left: int | None
    created_at: dt.datetime

    @property
    def kind(self) -> str:
        """What a person calls it: `enrollment` for a token bound to names (its scope is `issue`), else the scope."""
        return "enrollment" if self.cn is not None else self.scope


@dataclass(frozen=True)
class PKCS12Bundle:
    issued: IssuedCertificate
    data: bytes
