"""Certificate revocation lists (RFC 5280 section 5).

`build_crl` takes entry objects and is for small lists. A worker's CRL can have a million entries, and
cryptography needs a Python `RevokedCertificate` (built, encoded, parsed back) per entry: ~10 µs each. So the
service encodes each entry straight to DER (`encode_revoked_entry`, ~2 µs) and `build_crl_der` splices them into the
TBSCertList cryptography makes for the same CRL without entries. The bytes are the same either way (tested).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

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


def revoked_entries(crl: x509.CertificateRevocationList) -> list[RevokedEntry]:
    """A CRL's entries read back (to carry them into the next CRL of a CA that keeps no database: the root)."""
    names = {flag: name for name, flag in REASONS.items()}
    entries = []
    for revoked in crl:
        try:
            reason = names[revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason]
        except x509.ExtensionNotFound:
            reason = "unspecified"
        entries.append(RevokedEntry(revoked.serial_number, revoked.revocation_date_utc, reason))
    return entries


def load_crl_of(data: bytes, issuer: x509.Certificate) -> x509.CertificateRevocationList:
    """A CRL (DER or PEM) that `issuer` signed; ValueError naming what is wrong otherwise."""
    try:
        crl = x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----BEGIN") else x509.load_der_x509_crl(data)
    except ValueError:
        raise ValueError("not a CRL (DER or PEM)") from None
    if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise ValueError(f"not signed by {issuer.subject.rfc4514_string()}")
    try:
        crl.extensions.get_extension_for_class(x509.CRLNumber)
    except x509.ExtensionNotFound:
        raise ValueError("it has no CRL number") from None
    if crl.next_update_utc is None:
        raise ValueError("it has no nextUpdate")
    return crl


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def _revoked_certificate(entry: RevokedEntry) -> x509.RevokedCertificate:
    builder = x509.RevokedCertificateBuilder().serial_number(entry.serial_number).revocation_date(entry.revoked_at)
    if entry.reason != "unspecified":  # RFC 5280: omit the extension rather than say "unspecified"
        builder = builder.add_extension(x509.CRLReason(REASONS[entry.reason]), critical=False)
    return builder.build()


# --- many entries: DER straight from the database's text --------------------------------------------------------


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def _tlv(tag: int, *parts: bytes) -> bytes:
    return b"".join((bytes((tag,)), _der_length(sum(len(part) for part in parts)), *parts))


def _elements(der: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(tag, where the element starts, where its value starts, where it ends) for each element in der[start:end]."""
    position = start
    while position < end:
        tag, first = der[position], der[position + 1]
        value = position + 2 + (first & 0x7F if first & 0x80 else 0)
        length = int.from_bytes(der[position + 2 : value], "big") if first & 0x80 else first
        yield tag, position, value, value + length
        position = value + length


_REASON_EXTENSIONS: Final[dict[str | None, bytes]] = {  # crlEntryExtensions with just the CRLReason, encoded
    name: _tlv(0x30, _tlv(0x30, b"\x06\x03\x55\x1d\x15", _tlv(0x04, x509.CRLReason(flag).public_bytes())))
    for name, flag in REASONS.items()
    if name != "unspecified"
}
_REASON_EXTENSIONS.update({"unspecified": b"", None: b""})  # RFC 5280: omit rather than say "unspecified"
_LENGTHS: Final = [bytes((n,)) for n in range(0x80)]


def encode_revoked_entry(serial_hex: str, revoked_at_utc: str, reason: str | None) -> bytes:
    """One revokedCertificates entry, DER, as cryptography writes it: the serial as lower-case hex (as stored),
    the time as ISO-8601 UTC text ('YYYY-MM-DD HH:MM:SS...', as SQLite stores it; fractions are dropped)."""
    serial = int(serial_hex, 16)
    octets = serial.to_bytes((serial.bit_length() + 8) // 8, "big")  # one spare bit: DER's minimal positive form
    digits = revoked_at_utc[5:7] + revoked_at_utc[8:10] + revoked_at_utc[11:13] + revoked_at_utc[14:16]
    digits += revoked_at_utc[17:19] + "Z"
    if revoked_at_utc < "2050":  # RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime after
        when = b"\x17\x0d" + (revoked_at_utc[2:4] + digits).encode()
    else:
        when = b"\x18\x0f" + (revoked_at_utc[:4] + digits).encode()
    body = b"\x02" + _LENGTHS[len(octets)] + octets + when + _REASON_EXTENSIONS[reason]
    return b"\x30" + _LENGTHS[len(body)] + body


def is_tbs_certlist(data: bytes) -> bool:
    """Whether `data` starts like a v2 TBSCertList (SEQUENCE, then INTEGER 1): never a TBSCertificate, whose first
    field is [0], nor an OCSP ResponseData, nor a CSR's CertificationRequestInfo (INTEGER 0)."""
    if len(data) < 5 or data[0] != 0x30:
        return False
    first = data[1]
    value = 2 + (first & 0x7F if first & 0x80 else 0)
    return data[value : value + 3] == b"\x02\x01\x01"


def build_crl_der(
    signer: Signer,
    issuer: x509.Certificate,
    entries: Iterable[bytes],
    *,
    number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> bytes:
    """`build_crl` for entries already encoded by `encode_revoked_entry`, as DER.

    cryptography encodes all but the entries (an empty CRL); the entries go between nextUpdate and crlExtensions,
    and the signer signs that TBSCertList with the algorithm the empty CRL names.
    """
    empty = build_crl(signer, issuer, [], number=number, this_update=this_update, next_update=next_update)
    revoked = b"".join(entries)
    if not revoked:
        return empty.public_bytes(Encoding.DER)
    header = empty.tbs_certlist_bytes
    ((_, _, start, end),) = _elements(header, 0, len(header))
    split = next((at for tag, at, _, _ in _elements(header, start, end) if tag == 0xA0), end)  # [0] crlExtensions
    tbs = _tlv(0x30, header[start:split], b"\x30", _der_length(len(revoked)), revoked, header[split:end])
    whole = empty.public_bytes(Encoding.DER)  # CertificateList: tbsCertList, signatureAlgorithm, signature
    ((_, _, start, end),) = _elements(whole, 0, len(whole))
    _, (_, algorithm_start, _, algorithm_end), _ = _elements(whole, start, end)
    signature = signer.sign_crl_tbs(tbs)
    return _tlv(0x30, tbs, whole[algorithm_start:algorithm_end], _tlv(0x03, b"\x00", signature))
