"""Reading and revoking certificates: a holder its own, tokens by scope."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from cryptography import x509

from service import metrics
from service.authority.callers import Caller, ClientIdentity, require_scope
from service.authority.paging import check_limit, decode_cursor, encode_cursor
from service.authority.values import CertificateListing, Page, StoredCertificate
from service.ca.crl import encode_revoked_entry, parse_reason
from service.ca.inspect import format_serial, parse_serial, summarize
from service.db import certificates as certificate_rows
from service.db import counters
from service.db.certificates import CertificateRow
from service.errors import (
    AlreadyRevokedError,
    CertificateNotFoundError,
    InvalidRequestError,
    PermissionDeniedError,
    UnknownStatusError,
)
from service.inputs import as_utc

if TYPE_CHECKING:
    from service.authority.state import AuthorityState

STATUSES = ("valid", "revoked", "expired")


def get_certificate(authority: AuthorityState, serial_text: str, caller: Caller) -> StoredCertificate:
    serial = parse_serial_text(serial_text)
    if isinstance(caller, ClientIdentity):
        if caller.summary.serial != serial:
            raise PermissionDeniedError("a certificate holder may read only its own certificate")
    else:
        require_scope(caller, "admin", "read")
    row = certificate_rows.get(authority.db, serial)
    if row is None:
        raise CertificateNotFoundError(serial)
    return _stored(row, authority.clock())


def list_certificates(
    authority: AuthorityState,
    *,
    caller: Caller,
    cn: str | None,
    status: str | None,
    expires_before: dt.datetime | None,
    limit: int,
    cursor: str | None,
) -> Page[CertificateListing]:
    require_scope(caller, "admin", "read")
    if status is not None and status not in STATUSES:
        raise UnknownStatusError(status, STATUSES)
    if expires_before is not None:
        try:
            expires_before = as_utc(expires_before)
        except ValueError as exc:
            raise InvalidRequestError(f"expires_before {exc}") from None
    wanted = check_limit(limit)
    now = authority.clock()
    rows = certificate_rows.page(
        authority.db,
        now=now,
        cn=cn,
        status=status,
        expires_before=expires_before,
        before_id=decode_cursor(cursor),
        limit=wanted + 1,
    )
    items = [_listing(r, now) for r in rows[:wanted]]
    next_cursor = encode_cursor(rows[wanted - 1].id) if len(rows) > wanted else None
    return Page(items=items, next_cursor=next_cursor)


def revoke(authority: AuthorityState, serial_text: str, reason: str | None, caller: Caller) -> StoredCertificate:
    serial = parse_serial_text(serial_text)
    with authority.audit.refusing("certificate.revoke", caller, serial):
        try:
            reason_name = parse_reason(reason)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None
        if isinstance(caller, ClientIdentity):
            if caller.summary.serial != serial:
                raise PermissionDeniedError("a certificate holder may revoke only its own certificate")
        else:
            require_scope(caller, "admin", "revoke")

        with authority.db.transaction() as transaction:
            authority.tokens.spend(transaction, caller)
            row = certificate_rows.get_for_update(transaction, serial)
            if row is None:
                raise CertificateNotFoundError(serial)
            if row.status == "revoked":
                raise AlreadyRevokedError(serial)
            revoked_at = authority.clock()
            entry = encode_revoked_entry(serial, revoked_at.isoformat(" "), reason_name)
            row = certificate_rows.mark_revoked(transaction, serial, revoked_at, reason_name, entry)
            counters.increment(transaction, counters.REVOCATIONS)
            detail = f"reason={reason_name}"
            authority.audit.record(transaction, "certificate.revoke", caller, serial=serial, detail=detail)
    metrics.revocation(reason_name)
    return _stored(row, authority.clock())


def parse_serial_text(text: str) -> str:
    try:
        return format_serial(parse_serial(text))
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None


def _status(row: CertificateRow, now: dt.datetime) -> str:
    return "expired" if row.status == "valid" and row.not_after <= now else row.status


def _stored(row: CertificateRow, now: dt.datetime) -> StoredCertificate:
    certificate = x509.load_der_x509_certificate(row.der)
    return StoredCertificate(
        certificate=certificate,
        summary=summarize(certificate),
        profile=row.profile,
        status=_status(row, now),
        revoked_at=row.revoked_at,
        revocation_reason=row.revocation_reason,
        issued_by=row.issued_by,
        issued_via=row.issued_via,
    )


def _listing(row: CertificateRow, now: dt.datetime) -> CertificateListing:
    return CertificateListing(
        serial=row.serial,
        cn=row.cn,
        subject=row.subject,
        sans=row.sans,
        profile=row.profile,
        status=_status(row, now),
        not_before=row.not_before,
        not_after=row.not_after,
        revoked_at=row.revoked_at,
        revocation_reason=row.revocation_reason,
        fingerprint_sha256=row.fingerprint_sha256,
        issued_by=row.issued_by,
        issued_via=row.issued_via,
    )
