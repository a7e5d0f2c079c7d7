"""Rows. Each table keeps what it must keep; everything else is derived from the DER."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, UTCDateTime


class CertificateRecord(Base):
    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)  # lower-case hex; 159 bits fit no integer column
    cn: Mapped[str] = mapped_column(String(255), index=True)
    subject: Mapped[str] = mapped_column(Text)
    sans: Mapped[list[str]] = mapped_column(JSON)
    profile: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(16), default="valid")  # valid | revoked
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revocation_reason: Mapped[str | None] = mapped_column(String(32))
    fingerprint_sha256: Mapped[str] = mapped_column(String(64))  # shown, never searched: no index
    issued_by: Mapped[str | None] = mapped_column(String(80))  # the caller: "token:<id>", "cert:<serial>", ...
    # how it came in: token, enrollment, renewal, acme, console, local (service.authority.callers.issued_via)
    issued_via: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    # this certificate's entry in the CRL, DER, written when it is revoked: a CRL build only joins these
    crl_entry: Mapped[bytes | None] = mapped_column(LargeBinary)
    # the CA that signed it (service.ca.issue.issuer_id); NULL only for rows older than issuers, until migration 0017
    issuer_id: Mapped[str | None] = mapped_column(String(16))


class TokenRecord(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the secret; never the secret
    scope: Mapped[str] = mapped_column(String(16))
    cn: Mapped[str | None] = mapped_column(String(255))
    sans: Mapped[list[str] | None] = mapped_column(JSON)
    profile: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    uses_left: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CRLRecord(Base):
    __tablename__ = "crls"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    this_update: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    next_update: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revision: Mapped[int] = mapped_column(Integer)  # the revocation counter this CRL reflects
    der: Mapped[bytes] = mapped_column(LargeBinary)
    # whose CRL: numbers are one sequence over all issuers, so each issuer's numbers still only grow
    issuer_id: Mapped[str | None] = mapped_column(String(16), index=True)


class CounterRecord(Base):
    """Named counters that only grow, such as the number of revocations made."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


# Listings are newest first (ORDER BY id DESC LIMIT n): indexes ending in id let SQLite walk in order and stop
# at n. (status, id, not_after) serves status=... and the CRL without a sort (not_after is checked in the index);
# (cn, status) serves cn + status. No (status, not_after): without statistics SQLite would prefer its range and
# then sort every match (measured in bench/list_certs.py: 239 ms -> 2 ms for status=valid on 1M rows).
Index(
    "ix_certificates_status_id_not_after", CertificateRecord.status, CertificateRecord.id, CertificateRecord.not_after
)
# one issuer's revoked certificates (its CRL) and OCSP's check that a serial is that issuer's
Index("ix_certificates_issuer_status", CertificateRecord.issuer_id, CertificateRecord.status)
Index("ix_certificates_cn_status", CertificateRecord.cn, CertificateRecord.status)
# the per-token issuance rate limit counts a token's certificates of the last minute
Index("ix_certificates_issued_by_created_at", CertificateRecord.issued_by, CertificateRecord.created_at)


class AuditRecord(Base):
    """One row per change or refused attempt, written in the same transaction as the change."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(32))  # certificate.issue, certificate.revoke, token.create, ...
    outcome: Mapped[str] = mapped_column(String(16))  # ok | refused
    actor: Mapped[str] = mapped_column(String(80))  # token:<id>, cert:<serial>, local:<command>
    # no indexes but the id: the log is paged by id only (each index was one more write per event)
    token_id: Mapped[str | None] = mapped_column(String(32))
    serial: Mapped[str | None] = mapped_column(String(40))
    client_address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)


class ConsoleSessionRecord(Base):
    """A web console session (service/web): the cookie's secret is never stored, only its SHA-256."""

    __tablename__ = "console_sessions"

    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[str] = mapped_column(String(32), index=True)  # the token that logged in; checked each request
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class ServerSecretRecord(Base):
    """A secret every worker and replica of this database shares, made once by whichever needs it first: the key
    ACME nonces are authenticated with (service.authority.acme.nonces). A key the service must use cannot be
    stored hashed; it authenticates nothing a client could not get by asking (a nonce)."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))  # base64url
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class RenewalTokenUseRecord(Base):
    """A renewal token (a JWS the certificate's key signed) that was spent: its `jti` may not come back. Kept
    until the token would have expired anyway, so replays fail in every worker and replica."""

    __tablename__ = "renewal_token_uses"

    serial: Mapped[str] = mapped_column(String(40), primary_key=True)
    jti: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


from service.db import acme as _acme  # noqa: E402, F401  (registers the ACME tables)
