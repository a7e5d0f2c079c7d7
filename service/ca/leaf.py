"""Leaves encoded as DER from a per-CA, per-profile template and signed as one TBSCertificate.

`issue.build_leaf_builder` says what a leaf carries; CertificateBuilder then re-encodes every extension, the
issuer's name and the CA's AKI, CRL and OCSP addresses for each certificate. Here the parts that are the same in
every leaf of one CA, profile and key kind (version, signatureAlgorithm, issuer, basicConstraints, keyUsage,
extendedKeyUsage, AKI, CRL distribution point, AIA) are encoded once; per certificate only the serial, the
validity, the subject, the SPKI, the SKI and the SANs are, and the signer signs the TBS bytes directly (as
`crl.build_crl_der` does for CRLs). tests/ca/test_leaf_der.py holds the result byte for byte against
CertificateBuilder's for every profile and key type.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass
from typing import Final, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from service.ca.der import elements, tlv
from service.ca.issue import BACKDATE, _issuer_extensions, _key_usage
from service.ca.policy import LeafSpec
from service.ca.subject import check_issued
from service.ca.usage import has_key_encipherment, is_extended_key_usage_critical

VERSION_3: Final = b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT INTEGER 2
_CRITICAL: Final = b"\x01\x01\xff"
_OIDS: Final = {  # DER of the extension OIDs a leaf carries
    x509.BasicConstraints.oid: b"\x06\x03\x55\x1d\x13",
    x509.KeyUsage.oid: b"\x06\x03\x55\x1d\x0f",
    x509.ExtendedKeyUsage.oid: b"\x06\x03\x55\x1d\x25",
    x509.SubjectKeyIdentifier.oid: b"\x06\x03\x55\x1d\x0e",
    x509.AuthorityKeyIdentifier.oid: b"\x06\x03\x55\x1d\x23",
    x509.SubjectAlternativeName.oid: b"\x06\x03\x55\x1d\x11",
    x509.CRLDistributionPoints.oid: b"\x06\x03\x55\x1d\x1f",
    x509.AuthorityInformationAccess.oid: b"\x06\x08\x2b\x06\x01\x05\x05\x07\x01\x01",
}
# the signatureAlgorithm CertificateBuilder writes for the CA key (the hash of ca.keys.signature_hash)
_ECDSA_SHA256: Final = bytes.fromhex("300a06082a8648ce3d040302")
_ECDSA_SHA384: Final = bytes.fromhex("300a06082a8648ce3d040303")
_RSA_SHA256: Final = bytes.fromhex("300d06092a864886f70d01010b0500")
_ED25519: Final = bytes.fromhex("300506032b6570")


class TbsSigner(Protocol):
    def sign_tbs_certificate(self, tbs_certificate: bytes) -> bytes: ...


def signature_algorithm(ca_public_key: CertificatePublicKeyTypes) -> bytes:
    """The DER AlgorithmIdentifier of the CA's signatures (SHA-384 for P-384, none for Ed25519, else SHA-256)."""
    if isinstance(ca_public_key, ed25519.Ed25519PublicKey):
        return _ED25519
    if isinstance(ca_public_key, ec.EllipticCurvePublicKey):
        return _ECDSA_SHA384 if ca_public_key.curve.key_size >= 384 else _ECDSA_SHA256
    if isinstance(ca_public_key, rsa.RSAPublicKey):
        return _RSA_SHA256
    raise TypeError(f"cannot sign leaves with a {type(ca_public_key).__name__}")


def is_tbs_certificate(data: bytes) -> bool:
    """A DER SEQUENCE that opens with a v3 version field: a TBSCertificate, never a TBSCertList, a CSR's info or
    an OCSP response's data (so a signature over it can only ever be a certificate's)."""
    if len(data) < 8 or data[0] != 0x30:
        return False
    first = data[1]
    start = 2 + (first & 0x7F if first & 0x80 else 0)
    return data[start : start + len(VERSION_3)] == VERSION_3


def _extension(oid: x509.ObjectIdentifier, critical: bool, value: x509.ExtensionType) -> bytes:
    return tlv(0x30, _OIDS[oid], _CRITICAL if critical else b"", tlv(0x04, value.public_bytes()))


@dataclass(frozen=True)
class LeafTemplate:
    algorithm: bytes  # signatureAlgorithm, in the TBS and after it
    issuer_and_algorithm: bytes  # signature AlgorithmIdentifier + issuer Name, as they follow the serial
    leading: bytes  # basicConstraints, keyUsage, extendedKeyUsage
    authority: bytes  # AKI (between SKI and SAN)
    trailing: bytes  # CRL distribution point, AIA
    issuer_not_after: dt.datetime


@functools.lru_cache(maxsize=64)
def leaf_template(
    issuer: x509.Certificate,
    algorithm: bytes,
    extended_key_usage: tuple[x509.ObjectIdentifier, ...],
    key_encipherment: bool,
    public_url: str,
    issuer_id: str | None,
) -> LeafTemplate:
    authority_key_id, crl, aia = _issuer_extensions(issuer, public_url.rstrip("/"), issuer_id)
    leading = b"".join(
        (
            _extension(x509.BasicConstraints.oid, True, x509.BasicConstraints(ca=False, path_length=None)),
            _extension(x509.KeyUsage.oid, True, _key_usage(key_encipherment=key_encipherment)),
            _extension(
                x509.ExtendedKeyUsage.oid,
                is_extended_key_usage_critical(extended_key_usage),
                x509.ExtendedKeyUsage(list(extended_key_usage)),
            ),
        )
    )
    return LeafTemplate(
        algorithm=algorithm,
        issuer_and_algorithm=algorithm + issuer.subject.public_bytes(),
        leading=leading,
        authority=_extension(authority_key_id.oid, authority_key_id.critical, authority_key_id.value),
        trailing=b"".join(_extension(e.oid, e.critical, e.value) for e in (crl, aia)),
        issuer_not_after=issuer.not_valid_after_utc,
    )


def _time(value: dt.datetime) -> bytes:
    """UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5), whole seconds, as CertificateBuilder."""
    value = value.astimezone(dt.UTC)
    if 1950 <= value.year < 2050:
        return tlv(0x17, value.strftime("%y%m%d%H%M%SZ").encode())
    return tlv(0x18, value.strftime("%Y%m%d%H%M%SZ").encode())


def _key_identifier(spki: bytes) -> bytes:
    """RFC 5280 4.2.1.2 method (1), as `SubjectKeyIdentifier.from_public_key` makes it: the SHA-1 of the
    subjectPublicKey BIT STRING's bits, read from the SPKI already encoded (no second encoding of the key)."""
    ((_, _, start, end),) = elements(spki, 0, len(spki))
    _, (tag, _, value, stop) = elements(spki, start, end)  # the algorithm, then the key's BIT STRING
    if tag != 0x03:
        raise ValueError("not a SubjectPublicKeyInfo")
    return hashlib.sha1(spki[value + 1 : stop], usedforsecurity=False).digest()  # past the unused-bits octet


def _serial(serial_number: int) -> bytes:
    if serial_number <= 0:
        raise ValueError("a serial number must be positive")
    return tlv(0x02, serial_number.to_bytes(serial_number.bit_length() // 8 + 1, "big"))


def leaf_tbs(
    template: LeafTemplate,
    spec: LeafSpec,
    public_key: CertificatePublicKeyTypes,
    *,
    serial_number: int,
    now: dt.datetime,
) -> bytes:
    """The DER TBSCertificate of the leaf `issue.build_leaf_builder` describes, for the template's CA."""
    not_after = min(now + dt.timedelta(days=spec.validity_days), template.issuer_not_after)
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ski = x509.SubjectKeyIdentifier(_key_identifier(spki))
    extensions = tlv(
        0xA3,
        tlv(
            0x30,
            template.leading,
            _extension(x509.SubjectKeyIdentifier.oid, False, ski),
            template.authority,
            _extension(x509.SubjectAlternativeName.oid, False, x509.SubjectAlternativeName(list(spec.sans))),
            template.trailing,
        ),
    )
    return tlv(
        0x30,
        VERSION_3,
        _serial(serial_number),
        template.issuer_and_algorithm,
        tlv(0x30, _time(now - BACKDATE), _time(not_after)),
        spec.subject.public_bytes(),
        spki,
        extensions,
    )


def sign_leaf(
    signer: TbsSigner,
    spec: LeafSpec,
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Certificate,
    ca_public_key: CertificatePublicKeyTypes,
    *,
    serial_number: int,
    now: dt.datetime,
    public_url: str,
    issuer_id: str | None = None,
) -> tuple[x509.Certificate, bytes]:
    """The signed leaf (as cryptography's object and its DER)."""
    template = leaf_template(
        issuer,
        signature_algorithm(ca_public_key),
        tuple(spec.profile.extended_key_usage),
        has_key_encipherment(public_key, spec.profile.extended_key_usage),
        public_url,
        issuer_id,
    )
    tbs = leaf_tbs(template, spec, public_key, serial_number=serial_number, now=now)
    signature = signer.sign_tbs_certificate(tbs)
    der = tlv(0x30, tbs, template.algorithm, tlv(0x03, b"\x00", signature))
    certificate = x509.load_der_x509_certificate(der)
    check_issued(certificate, spec.subject, spec.sans)  # nothing leaves unless it parses back to what was accepted
    return certificate, der


def fingerprint_sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()
