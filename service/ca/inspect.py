"""Reading certificates back: serials at the edges, and the summary the API and /whoami show."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from service.ca.names import format_general_name, get_common_name


def format_serial(serial_number: int) -> str:
    """Lower-case hex without colons: the only form serials take at the edges."""
    return format(serial_number, "x")


def format_time(when: dt.datetime | str) -> str:
    """The one way a person reads a time: RFC 3339 in UTC, to the second, with `Z` (2027-03-07T02:19:51Z).
    Takes an aware datetime or the RFC 3339 text a server sent."""
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when.replace("Z", "+00:00").replace("z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"{when!r} has no time zone")
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_serial(text: str) -> int:
    """Accepts colons, a 0x prefix and upper case; raises ValueError otherwise."""
    cleaned = text.strip().lower().replace(":", "")
    cleaned = cleaned.removeprefix("0x")
    if not cleaned or len(cleaned) > 40 or any(c not in "0123456789abcdef" for c in cleaned):
        raise ValueError(f"{text!r} is not a certificate serial (hex, at most 20 octets)")
    return int(cleaned, 16)


@dataclass(frozen=True)
class CertificateSummary:
    serial: str
    subject: str
    cn: str | None
    sans: tuple[str, ...]
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint_sha256: str


def get_sans(certificate: x509.Certificate | x509.CertificateSigningRequest) -> tuple[str, ...]:
    try:
        ext = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(format_general_name(name) for name in ext.value)


def summarize(certificate: x509.Certificate) -> CertificateSummary:
    return CertificateSummary(
        serial=format_serial(certificate.serial_number),
        subject=certificate.subject.rfc4514_string(),
        cn=get_common_name(certificate.subject),
        sans=get_sans(certificate),
        issuer=certificate.issuer.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
    )


def summarize_issued(
    certificate: x509.Certificate,
    der: bytes,
    subject: x509.Name,
    sans: Sequence[x509.GeneralName],
    issuer: x509.Certificate,
) -> CertificateSummary:
    """`summarize` for a certificate just built from these names, and its DER: the same summary without parsing
    its extensions and names back (a third of the issuance hot path's Python time)."""
    return CertificateSummary(
        serial=format_serial(certificate.serial_number),
        subject=subject.rfc4514_string(),
        cn=get_common_name(subject),
        sans=tuple(format_general_name(name) for name in sans),
        issuer=_issuer_name(issuer),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),  # the same digest, without cryptography's re-encoding
    )


@functools.lru_cache(maxsize=16)
def _issuer_name(issuer: x509.Certificate) -> str:
    return issuer.subject.rfc4514_string()


def has_extended_key_usage(certificate: x509.Certificate, usage: x509.ObjectIdentifier) -> bool:
    try:
        ext = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return False
    return usage in ext.value


def is_ca_certificate(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def der_to_pem(der: bytes, label: str) -> str:
    """PEM armour for any DER blob (a CRL, say); certificates use cryptography's own PEM encoding."""
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"
