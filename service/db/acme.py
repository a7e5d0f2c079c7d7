"""ACME rows (RFC 8555): spent nonces, accounts, orders, authorizations, challenges and external account
bindings. Their statements live in db.nonces, db.acme_accounts, db.acme_orders and db.acme_authorizations.

Every worker and replica sees the same rows, so a nonce spent on one is spent for every other.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, UTCDateTime


class AcmeNonceRecord(Base):
    """A nonce that was spent (service.authority.acme.nonces): kept until it expires, when it could not pass anyway."""

    __tablename__ = "acme_nonces"

    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class AcmeAccountRecord(Base):
    __tablename__ = "acme_accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    thumbprint: Mapped[str] = mapped_column(String(64), unique=True)  # RFC 7638, base64url SHA-256 of the JWK
    jwk: Mapped[dict[str, Any]] = mapped_column(JSON)  # the public key only
    status: Mapped[str] = mapped_column(String(16))  # valid | deactivated | revoked
    contact: Mapped[list[str]] = mapped_column(JSON)
    eab_kid: Mapped[str | None] = mapped_column(String(64), unique=True)
    profile: Mapped[str | None] = mapped_column(String(64))  # bound by the EAB key, if it named one
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_from: Mapped[str | None] = mapped_column(String(64))  # the client's address (its /64 for IPv6)


class AcmeOrderRecord(Base):
    __tablename__ = "acme_orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("acme_accounts.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | ready | processing | valid | invalid
    identifiers: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    authorization_ids: Mapped[list[str]] = mapped_column(JSON)
    profile: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    certificate_serial: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_from: Mapped[str | None] = mapped_column(String(64))  # the client's address (its /64 for IPv6)


class AcmeAuthorizationRecord(Base):
    __tablename__ = "acme_authorizations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("acme_accounts.id"))
    identifier_type: Mapped[str] = mapped_column(String(8))  # dns | ip
    identifier_value: Mapped[str] = mapped_column(String(255))
    wildcard: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16))  # pending | valid | invalid | deactivated | expired | revoked
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AcmeChallengeRecord(Base):
    __tablename__ = "acme_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    authorization_id: Mapped[str] = mapped_column(ForeignKey("acme_authorizations.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))  # http-01 | dns-01 | tls-alpn-01
    token: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # pending | processing | valid | invalid
    processing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # a worker took it to validate
    validated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    record: Mapped[str | None] = mapped_column(Text)  # what validation saw (address, URL, answer), for the audit


class AcmeEABKeyRecord(Base):
    """An external account binding key. The HMAC key is a shared secret the server must read back to verify
    the binding, so it cannot be hashed: it is kept only until it binds an account, then wiped."""

    __tablename__ = "acme_eab_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    hmac_key: Mapped[str | None] = mapped_column(String(128))  # base64url; None once used
    profile: Mapped[str | None] = mapped_column(String(64))
    account_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


# the rate limits count an account's orders, and an address's accounts and orders, of the last hours
Index("ix_acme_orders_account_id_created_at", AcmeOrderRecord.account_id, AcmeOrderRecord.created_at)
Index("ix_acme_orders_created_from_created_at", AcmeOrderRecord.created_from, AcmeOrderRecord.created_at)
Index("ix_acme_accounts_created_from_created_at", AcmeAccountRecord.created_from, AcmeAccountRecord.created_at)
# reuse of a valid authorization looks up the account's authorizations for one identifier
Index(
    "ix_acme_authorizations_account_identifier",
    AcmeAuthorizationRecord.account_id,
    AcmeAuthorizationRecord.identifier_value,
    AcmeAuthorizationRecord.status,
)
