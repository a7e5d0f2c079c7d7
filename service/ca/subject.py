"""The string types of an issued subject (RFC 5280 4.1.2.4, 4.1.2.6 and appendix A), and the check that a signed
certificate parses back to exactly what policy accepted.

A CSR's subject arrives with whatever ASN.1 types its maker chose; cryptography keeps them, and an OCTET STRING
CN would be signed as is (OpenSSL then cannot load the certificate). So every attribute is re-encoded here:
emailAddress and domainComponent as IA5String; countryName and serialNumber as PrintableString (their X.520
syntax); every other (DirectoryString) attribute as PrintableString when it was one, else UTF8String. A value that
is not a character string at all is refused (`string_type_problems`, a 400), and one its attribute's type cannot
hold, such as a non-ASCII emailAddress, is a policy problem (`encode_subject`, a 403).

cryptography carries an attribute's ASN.1 type in `NameAttribute._type` (since 2.x; the constructor's `_type`
keyword): both uses are in this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Final

from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from service.errors import InvalidRequestError

IA5: Final = _ASN1Type.IA5String
PRINTABLE: Final = _ASN1Type.PrintableString
UTF8: Final = _ASN1Type.UTF8String
CHARACTER_STRINGS: Final = frozenset(
    {
        UTF8,
        PRINTABLE,
        IA5,
        _ASN1Type.T61String,
        _ASN1Type.BMPString,
        _ASN1Type.UniversalString,
        _ASN1Type.VisibleString,
        _ASN1Type.NumericString,
    }
)
_IA5_ATTRIBUTES: Final = frozenset({NameOID.EMAIL_ADDRESS, NameOID.DOMAIN_COMPONENT})
_PRINTABLE_ATTRIBUTES: Final = frozenset({NameOID.COUNTRY_NAME, NameOID.SERIAL_NUMBER, NameOID.DN_QUALIFIER})
_PRINTABLE_CHARACTERS: Final = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]*")
_DIRECTORY_STRING: Final = frozenset({PRINTABLE, UTF8})
_SAN: Final = x509.SubjectAlternativeName.oid


def allowed_types(oid: x509.ObjectIdentifier) -> frozenset[_ASN1Type]:
    if oid in _IA5_ATTRIBUTES:
        return frozenset({IA5})
    if oid in _PRINTABLE_ATTRIBUTES:
        return frozenset({PRINTABLE})
    return _DIRECTORY_STRING


def _label(oid: x509.ObjectIdentifier) -> str:
    return getattr(oid, "_name", None) or oid.dotted_string


def _type_name(kind: _ASN1Type) -> str:
    return {"OctetString": "an OCTET STRING", "BitString": "a BIT STRING"}.get(kind.name, f"a {kind.name}")


def string_type_problems(subject: x509.Name) -> list[str]:
    """Attributes whose value is not a character string (an OCTET STRING, a time, bits): nothing to re-encode."""
    return [
        f"subject attribute {_label(a.oid)} is {_type_name(a._type)}, not a character string"
        for a in subject
        if a._type not in CHARACTER_STRINGS or not isinstance(a.value, str)
    ]


def is_printable(value: str) -> bool:
    return _PRINTABLE_CHARACTERS.fullmatch(value) is not None


def encode_subject(attributes: Iterable[x509.NameAttribute[Any]]) -> tuple[x509.Name, list[str]]:
    """The subject to certify, one attribute per RDN, each in a type RFC 5280 allows for it; and the values that
    type cannot hold."""
    encoded: list[x509.NameAttribute[Any]] = []
    problems: list[str] = []
    for attribute in attributes:
        value, oid = attribute.value, attribute.oid
        if not isinstance(value, str):
            problems.append(f"subject attribute {_label(oid)} is not a character string")
            continue
        allowed = allowed_types(oid)
        if allowed == {IA5}:
            if not value.isascii():
                problems.append(f"subject attribute {_label(oid)} must be ASCII (an IA5String)")
                continue
            kind = IA5
        elif allowed == {PRINTABLE}:
            if not is_printable(value):
                problems.append(
                    f"subject attribute {_label(oid)} may hold only letters, digits, spaces and '()+,-./:=? "
                    "(a PrintableString)"
                )
                continue
            if oid == NameOID.COUNTRY_NAME and not (len(value) == 2 and value.isascii() and value.isalpha()):
                problems.append("subject attribute countryName must be a two-letter country code")
                continue
            kind = PRINTABLE
        else:
            kind = PRINTABLE if attribute._type == PRINTABLE and is_printable(value) else UTF8
        if attribute._type == kind:  # already right: kept as it is (most subjects)
            encoded.append(attribute)
        else:
            encoded.append(x509.NameAttribute(oid, value, _type=kind, _validate=False))
    return x509.Name(encoded), problems


def _typed(subject: x509.Name) -> list[tuple[x509.ObjectIdentifier, object, _ASN1Type]]:
    return [(a.oid, a.value, a._type) for a in subject]


def check_issued(certificate: x509.Certificate, subject: x509.Name, sans: Sequence[x509.GeneralName]) -> None:
    """That a signed certificate parses back with cryptography, its every extension too, and carries exactly
    `subject` (values and string types, each one RFC 5280 allows) and `sans`. Raises InvalidRequestError: the
    certificate is then never recorded nor returned."""
    problems = []
    try:
        parsed = _typed(certificate.subject)
        extensions = certificate.extensions
    except ValueError as exc:
        raise InvalidRequestError(f"the certificate made from this request does not parse back ({exc})") from None
    if parsed != _typed(subject):
        problems.append("its subject is not the one policy accepted")
    problems.extend(
        f"its subject attribute {_label(oid)} is {_type_name(kind)}"
        for oid, _, kind in parsed
        if kind not in allowed_types(oid)
    )
    carried = next((list(e.value) for e in extensions if e.oid == _SAN), [])
    if carried != list(sans):
        problems.append("its subject alternative names are not the ones policy accepted")
    if problems:
        raise InvalidRequestError("the certificate made from this request is not right: " + "; ".join(problems))
