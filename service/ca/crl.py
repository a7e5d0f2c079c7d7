"""Certificate revocation lists (RFC 5280 section 5)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from cryptography import x509

from service.ca.issue import Signer, authority_key_identifier

# RFC 5280 reason names, as the API spells them, mapped to cryptography's flags.
REASONS: Final[dict[str, x509.ReasonFlags]] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "cACompromise": x509.ReasonFlags.ca_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "certificateHold": x509.ReasonFlags.certificate_hold,
    "removeFromCRL": x509.ReasonFlags.remove_from_crl,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
    "aACompromise": x509.ReasonFlags.aa_compromise,
}
# removeFromCRL only makes sense in delta CRLs, and certificateHold would need un-revoking.
REVOCATION_REASONS: Final = tuple(name for name in REASONS if name not in {"removeFromCRL", "certificateHold"})


@dataclass(frozen=True)
class RevokedEntry:
    serial_number: int
    revoked_at: dt.datetime
    reason: str = "unspecified"


def parse_reason(text: str | None) -> str:
    if text is None or text == "":
        return "unspecified"
    for name in REVOCATION_REASONS:
        if name.lower() == text.strip().lower():
            return name
    raise ValueError(f"unknown revocation reason {text!r}; use one of {', '.join(REVOCATION_REASONS)}")


def build_crl(
    signer: Signer,
    issuer: x509.Certificate,
    entries: Iterable[RevokedEntry],
    *,
    number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> x509.CertificateRevocationList:
    """Signs a full CRL. The entries go to the builder's constructor: adding them one by one is quadratic."""
    revoked = [_revoked_certificate(entry) for entry in entries]
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuer.subject,
        last_update=this_update,
        next_update=next_update,
        extensions=[
            x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
            x509.Extension(x509.AuthorityKeyIdentifier.oid, False, authority_key_identifier(issuer)),
        ],
        revoked_certificates=revoked,
    )
    return signer.sign_crl(builder)


def _revoked_certificate(entry: RevokedEntry) -> x509.RevokedCertificate:
    builder = x509.RevokedCertificateBuilder().serial_number(entry.serial_number).revocation_date(entry.revoked_at)
    if entry.reason != "unspecified":  # RFC 5280: omit the extension rather than say "unspecified"
        builder = builder.add_extension(x509.CRLReason(REASONS[entry.reason]), critical=False)
    return builder.build()
