"""The acme_accounts and acme_eab_keys tables: ACME accounts (RFC 8555 §7.3) and the external account binding
keys an operator hands out. Reads return plain values; writes take the change's Transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from service.db.acme import AcmeAccountRecord, AcmeEABKeyRecord
from service.db.sql import Transaction

if TYPE_CHECKING:
    from service.db.session import Database


@dataclass(frozen=True)
class AccountRow:
    id: str
    status: str
    contact: tuple[str, ...]
    jwk: dict[str, Any]
    thumbprint: str
    profile: str | None


@dataclass(frozen=True)
class EABKeyRow:
    kid: str
    hmac_key: str | None  # base64url; None once it bound an account
    profile: str | None


def _row(record: AcmeAccountRecord) -> AccountRow:
    return AccountRow(record.id, record.status, tuple(record.contact), record.jwk, record.thumbprint, record.profile)


def get(db: Database, account_id: str) -> AccountRow | None:
    with db.reader() as session:
        record = session.get(AcmeAccountRecord, account_id)
        return _row(record) if record is not None else None


def by_thumbprint(db: Database, thumbprint: str) -> AccountRow | None:
    with db.reader() as session:
        record = session.scalar(select(AcmeAccountRecord).where(AcmeAccountRecord.thumbprint == thumbprint))
        return _row(record) if record is not None else None


def id_with_thumbprint(transaction: Transaction, thumbprint: str) -> str | None:
    """Inside a write (writers take turns): the account that holds this key now."""
    return transaction.session.scalar(  # type: ignore[no-any-return]
        select(AcmeAccountRecord.id).where(AcmeAccountRecord.thumbprint == thumbprint)
    )


def add(
    transaction: Transaction,
    account: AccountRow,
    *,
    eab_kid: str | None,
    created_at: dt.datetime,
    created_from: str | None,
) -> None:
    transaction.session.add(
        AcmeAccountRecord(
            id=account.id,
            thumbprint=account.thumbprint,
            jwk=account.jwk,
            status=account.status,
            contact=list(account.contact),
            eab_kid=eab_kid,
            profile=account.profile,
            created_at=created_at,
            created_from=created_from,
        )
    )


def update(transaction: Transaction, account_id: str, **changes: Any) -> AccountRow:
    """Sets `status`, `contact`, `jwk` or `thumbprint`; returns the account as it now is."""
    record = transaction.session.get(AcmeAccountRecord, account_id)
    assert record is not None
    for name, value in changes.items():
        assert name in ("status", "contact", "jwk", "thumbprint"), name
        setattr(record, name, list(value) if name == "contact" else value)
    return _row(record)


def nth_newest_from(transaction: Transaction, created_from: str, since: dt.datetime, n: int) -> dt.datetime | None:
    """When the n-th newest account created from this address after `since` was made (None: fewer than n)."""
    return _nth_newest(transaction, AcmeAccountRecord.created_from == created_from, since, n)


def _nth_newest(transaction: Transaction, where: Any, since: dt.datetime, n: int) -> dt.datetime | None:
    created_at = AcmeAccountRecord.created_at
    query = select(created_at).where(where, created_at > since).order_by(created_at.desc()).offset(n - 1).limit(1)
    return transaction.session.scalar(query)  # type: ignore[no-any-return]


# --- external account binding keys -----------------------------------------------------------------------------


def eab_key(transaction: Transaction, kid: str) -> EABKeyRow | None:
    record = transaction.session.get(AcmeEABKeyRecord, kid)
    return EABKeyRow(record.kid, record.hmac_key, record.profile) if record is not None else None


def bind_eab_key(transaction: Transaction, kid: str, account_id: str, now: dt.datetime) -> None:
    """A key binds one account: its HMAC key is wiped."""
    record = transaction.session.get(AcmeEABKeyRecord, kid)
    assert record is not None
    record.account_id, record.hmac_key, record.used_at = account_id, None, now


def add_eab_key(
    transaction: Transaction, kid: str, hmac_key: str, profile: str | None, created_at: dt.datetime
) -> None:
    transaction.session.add(AcmeEABKeyRecord(kid=kid, hmac_key=hmac_key, profile=profile, created_at=created_at))
