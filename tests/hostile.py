"""Subjects with every string type a CSR may carry, for the tests of re-encoding and of the parse-back check."""

from __future__ import annotations

import warnings

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type as T
from cryptography.x509.oid import NameOID

Attribute = tuple[x509.ObjectIdentifier, str, T]


def name_of(attributes: list[Attribute]) -> x509.Name:
    with warnings.catch_warnings():  # cryptography warns, without _validate, of a country code not two letters long
        warnings.simplefilter("ignore", UserWarning)
        return x509.Name([x509.NameAttribute(oid, v, _type=kind, _validate=False) for oid, v, kind in attributes])


def csr_with(attributes: list[Attribute], sans: list[str] = (), key: ec.EllipticCurvePrivateKey | None = None) -> bytes:  # type: ignore[assignment]
    """A PEM CSR whose subject attributes have exactly these ASN.1 types (whatever a standard says)."""
    builder = x509.CertificateSigningRequestBuilder(name_of(attributes))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    return builder.sign(key or ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()).public_bytes(Encoding.PEM)


# (what a CSR asks for, the (type) each attribute must be issued with)
REENCODED: list[tuple[str, list[Attribute], list[T]]] = [
    ("BMPString CN", [(NameOID.COMMON_NAME, "bmp.example.com", T.BMPString)], [T.UTF8String]),
    ("T61String O", [(NameOID.ORGANIZATION_NAME, "Teletex Inc", T.T61String)], [T.UTF8String]),
    (
        "UniversalString OU with an emoji",
        [(NameOID.ORGANIZATIONAL_UNIT_NAME, "ops 😀", T.UniversalString)],
        [T.UTF8String],
    ),
    ("VisibleString L", [(NameOID.LOCALITY_NAME, "Berlin", T.VisibleString)], [T.UTF8String]),
    ("IA5String CN", [(NameOID.COMMON_NAME, "ia5.example.com", T.IA5String)], [T.UTF8String]),
    (
        "PrintableString ST stays",
        [(NameOID.STATE_OR_PROVINCE_NAME, "Bavaria (South)", T.PrintableString)],
        [T.PrintableString],
    ),
    ("UTF8String emailAddress", [(NameOID.EMAIL_ADDRESS, "ops@example.com", T.UTF8String)], [T.IA5String]),
    ("BMPString DC", [(NameOID.DOMAIN_COMPONENT, "example", T.BMPString)], [T.IA5String]),
    ("UTF8String C", [(NameOID.COUNTRY_NAME, "DE", T.UTF8String)], [T.PrintableString]),
    ("NumericString serialNumber", [(NameOID.SERIAL_NUMBER, "12345", T.NumericString)], [T.PrintableString]),
    ("UTF8 with RFC 4514 specials", [(NameOID.ORGANIZATION_NAME, 'a,b+c="d"\\<e>;#f', T.UTF8String)], [T.UTF8String]),
    ("64 non-ASCII characters", [(NameOID.ORGANIZATION_NAME, "ü" * 64, T.UTF8String)], [T.UTF8String]),
]
# asked for, refused: (what, attributes, status, words in the problem's detail)
REFUSED: list[tuple[str, list[Attribute], int, str]] = [
    ("OCTET STRING CN", [(NameOID.COMMON_NAME, "oct", T.OctetString)], 400, "OCTET STRING, not a character string"),
    ("UTCTime O", [(NameOID.ORGANIZATION_NAME, "250101000000Z", T.UTCTime)], 400, "UTCTime, not a character string"),
    ("non-ASCII emailAddress", [(NameOID.EMAIL_ADDRESS, "jörg@example.com", T.UTF8String)], 403, "must be ASCII"),
    ("a country code with a digit", [(NameOID.COUNTRY_NAME, "D1", T.PrintableString)], 403, "two-letter country code"),
    ("serialNumber with @", [(NameOID.SERIAL_NUMBER, "a@b", T.UTF8String)], 403, "PrintableString"),
]
