"""The acme_authorizations and acme_challenges tables (RFC 8555 §7.5). Reads return plain values; writes take the
change's Transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from service.db.acme import AcmeAuthorizationRecord, AcmeChallengeRecord
from service.db.sql import Transaction

if TYPE_CHECKING:
    from service.db.session import Database


@dataclass(frozen=True)
class AuthorizationRow:
    id: str
    account_id: str
    identifier_type: str
    identifier_value: str
    wildcard: bool
    status: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class ChallengeRow:
    id: str
    authorization_id: str
    type: str
    token: str
    status: str
    processing_since: dt.datetime | None
    validated_at: dt.datetime | None
    error: dict[str, Any] | None


def _authorization(r: AcmeAuthorizationRecord) -> AuthorizationRow:
    return AuthorizationRow(
        r.id, r.account_id, r.identifier_type, r.identifier_value, r.wildcard, r.status, r.expires_at
    )


def _challenge(r: AcmeChallengeRecord) -> ChallengeRow:
    return ChallengeRow(
        r.id, r.authorization_id, r.type, r.token, r.status, r.processing_since, r.validated_at, r.error
    )


def get(transaction: Transaction, authorization_id: str) -> AuthorizationRow | None:
    record = transaction.session.get(AcmeAuthorizationRecord, authorization_id)
    return _authorization(record) if record is not None else None


def by_ids(transaction: Transaction, ids: list[str]) -> list[AuthorizationRow]:
    """In the order of `ids` (those that exist)."""
    rows = transaction.session.scalars(select(AcmeAuthorizationRecord).where(AcmeAuthorizationRecord.id.in_(ids)))
    by_id = {r.id: r for r in rows}
    return [_authorization(by_id[i]) for i in ids if i in by_id]


def reusable(
    transaction: Transaction, account_id: str, kind: str, value: str, wildcard: bool, expiring_after: dt.datetime
) -> AuthorizationRow | None:
    """The account's valid (else pending) authorization for the identifier, good past `expiring_after`."""
    record = transaction.session.scalar(
        select(AcmeAuthorizationRecord)
        .where(
            AcmeAuthorizationRecord.account_id == account_id,
            AcmeAuthorizationRecord.identifier_value == value,
            AcmeAuthorizationRecord.identifier_type == kind,
            AcmeAuthorizationRecord.wildcard == wildcard,
            AcmeAuthorizationRecord.status.in_(("valid", "pending")),
            AcmeAuthorizationRecord.expires_at > expiring_after,
        )
        .order_by(AcmeAuthorizationRecord.status.desc(), AcmeAuthorizationRecord.expires_at.desc())
        .limit(1)
    )  # a valid one first ("valid" > "pending")
    return _authorization(record) if record is not None else None


def is_held(db: Database, account_id: str, kind: str, value: str, wildcard: bool, now: dt.datetime) -> bool:
    """Whether the account holds a valid, unexpired authorization for the identifier."""
    with db.reader() as session:
        found = session.scalar(
            select(AcmeAuthorizationRecord.id)
            .where(
                AcmeAuthorizationRecord.account_id == account_id,
                AcmeAuthorizationRecord.identifier_type == kind,
                AcmeAuthorizationRecord.identifier_value == value,
                AcmeAuthorizationRecord.wildcard == wildcard,
                AcmeAuthorizationRecord.status == "valid",
                AcmeAuthorizationRecord.expires_at > now,
            )
            .limit(1)
        )
    return found is not None


def add(
    transaction: Transaction, authorization: AuthorizationRow, created_at: dt.datetime, challenges: list[ChallengeRow]
) -> None:
    session = transaction.session
    a = authorization
    session.add(
        AcmeAuthorizationRecord(
            id=a.id,
            account_id=a.account_id,
            identifier_type=a.identifier_type,
            identifier_value=a.identifier_value,
            wildcard=a.wildcard,
            status=a.status,
            expires_at=a.expires_at,
            created_at=created_at,
        )
    )
    for c in challenges:
        record = AcmeChallengeRecord(id=c.id, authorization_id=c.authorization_id, type=c.type, token=c.token)
        record.status = c.status
        session.add(record)


def update(transaction: Transaction, authorization_id: str, **changes: Any) -> AuthorizationRow:
    """Sets `status` or `expires_at`; returns the authorization as it now is."""
    record = transaction.session.get(AcmeAuthorizationRecord, authorization_id)
    assert record is not None
    for name, value in changes.items():
        assert name in ("status", "expires_at"), name
        setattr(record, name, value)
    return _authorization(record)


def challenges(transaction: Transaction, authorization_id: str) -> list[ChallengeRow]:
    """An authorization's challenges, by type."""
    records = transaction.session.scalars(
        select(AcmeChallengeRecord)
        .where(AcmeChallengeRecord.authorization_id == authorization_id)
        .order_by(AcmeChallengeRecord.type)
    )
    return [_challenge(r) for r in records]


def challenge(transaction: Transaction, challenge_id: str) -> ChallengeRow | None:
    record = transaction.session.get(AcmeChallengeRecord, challenge_id)
    return _challenge(record) if record is not None else None


def read_challenge(db: Database, challenge_id: str) -> tuple[ChallengeRow, AuthorizationRow] | None:
    """A challenge and its authorization, outside a write."""
    with db.reader() as session:
        record = session.get(AcmeChallengeRecord, challenge_id)
        authz = session.get(AcmeAuthorizationRecord, record.authorization_id) if record is not None else None
        if record is None or authz is None:
            return None
        return _challenge(record), _authorization(authz)


def update_challenge(transaction: Transaction, challenge_id: str, **changes: Any) -> ChallengeRow:
    """Sets `status`, `processing_since`, `validated_at`, `error` or `record` (what validation saw)."""
    record = transaction.session.get(AcmeChallengeRecord, challenge_id)
    assert record is not None
    for name, value in changes.items():
        assert name in ("status", "processing_since", "validated_at", "error", "record"), name
        setattr(record, name, value)
    return _challenge(record)
