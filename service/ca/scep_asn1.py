"""The ASN.1 that SCEP needs beyond what cryptography reads: CMS structures (RFC 5652, via pyasn1-modules), the
SCEP attributes (RFC 8894 §3.2.1), and the conversions between pyasn1 values and cryptography's objects.

Certificates and CRLs inside CMS are decoded as opaque DER (`univ.Any`) and handed to cryptography: pyasn1 would
spend a millisecond per certificate building a tree nobody reads.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier
from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import base, char, namedtype, tag, univ, useful
from pyasn1_modules import rfc5280, rfc5652

from service.ca.scep_types import FailInfo, ScepError

# SCEP's signed attributes (RFC 8894 §3.2.1), and the CMS and PKCS#9 ones a pkiMessage carries with them.
MESSAGE_TYPE: Final = univ.ObjectIdentifier("2.16.840.1.113733.1.9.2")
PKI_STATUS: Final = univ.ObjectIdentifier("2.16.840.1.113733.1.9.3")
FAIL_INFO: Final = univ.ObjectIdentifier("2.16.840.1.113733.1.9.4")
SENDER_NONCE: Final = univ.ObjectIdentifier("2.16.840.1.113733.1.9.5")
RECIPIENT_NONCE: Final = univ.ObjectIdentifier("2.16.840.1.113733.1.9.6")
TRANSACTION_ID: Final = univ.ObjectIdentifier("2.16.840.1.113733.1.9.7")
FAIL_INFO_TEXT: Final = univ.ObjectIdentifier("1.3.6.1.5.5.7.24.1")
CONTENT_TYPE: Final = rfc5652.id_contentType
MESSAGE_DIGEST: Final = rfc5652.id_messageDigest
SIGNING_TIME: Final = rfc5652.id_signingTime
CHALLENGE_PASSWORD: Final = univ.ObjectIdentifier("1.2.840.113549.1.9.7")
SMIME_CAPABILITIES: Final = univ.ObjectIdentifier("1.2.840.113549.1.9.15")
ID_DATA: Final = rfc5652.id_data
ID_SIGNED_DATA: Final = rfc5652.id_signedData
ID_ENVELOPED_DATA: Final = rfc5652.id_envelopedData
RSA_ENCRYPTION: Final = univ.ObjectIdentifier("1.2.840.113549.1.1.1")
RSAES_OAEP: Final = univ.ObjectIdentifier("1.2.840.113549.1.1.7")

_MAX_STRING: Final = 1024  # a transactionID, a nonce or a challenge longer than this is not a client's


def _context(number: int) -> tag.Tag:
    return tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, number)


def _opaque_set(number: int) -> univ.SetOf:
    return univ.SetOf(componentType=univ.Any()).subtype(implicitTag=_context(number))


# Specs as pyasn1 schema objects (decode with them). What we only compare or hand on is left as `univ.Any` (its
# DER kept whole): pyasn1 spends 10-15 µs on every node it builds, and a pkiMessage has hundreds.
SIGNER_INFO: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        namedtype.NamedType("version", univ.Integer()),
        namedtype.NamedType("sid", univ.Any()),  # IssuerAndSerialNumber or [0] SubjectKeyIdentifier, compared whole
        namedtype.NamedType("digestAlgorithm", rfc5280.AlgorithmIdentifier()),
        namedtype.OptionalNamedType("signedAttrs", _opaque_set(0)),  # each Attribute whole: see scep_signed
        namedtype.NamedType("signatureAlgorithm", rfc5280.AlgorithmIdentifier()),
        namedtype.NamedType("signature", univ.OctetString()),
        namedtype.OptionalNamedType("unsignedAttrs", _opaque_set(1)),
    )
)

SIGNED_DATA: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        namedtype.NamedType("version", rfc5652.CMSVersion()),
        namedtype.NamedType("digestAlgorithms", univ.SetOf(componentType=univ.Any())),
        namedtype.NamedType("encapContentInfo", rfc5652.EncapsulatedContentInfo()),
        namedtype.OptionalNamedType("certificates", _opaque_set(0)),
        namedtype.OptionalNamedType("crls", _opaque_set(1)),
        namedtype.NamedType("signerInfos", univ.SetOf(componentType=SIGNER_INFO)),
    )
)
"""RFC 5652 SignedData; certificates and CRLs left as DER for cryptography."""

ENVELOPED_DATA: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        namedtype.NamedType("version", univ.Integer()),
        namedtype.OptionalNamedType(
            "originatorInfo", univ.SequenceOf(componentType=univ.Any()).subtype(implicitTag=_context(0))
        ),
        namedtype.NamedType("recipientInfos", univ.SetOf(componentType=univ.Any())),
        namedtype.NamedType("encryptedContentInfo", rfc5652.EncryptedContentInfo()),
        namedtype.OptionalNamedType("unprotectedAttrs", _opaque_set(1)),
    )
)
"""RFC 5652 EnvelopedData; each RecipientInfo left whole, read as KEY_TRANS when it is one (a SEQUENCE)."""

KEY_TRANS: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        namedtype.NamedType("version", univ.Integer()),
        namedtype.NamedType("rid", univ.Any()),  # IssuerAndSerialNumber or [0] SubjectKeyIdentifier, compared whole
        namedtype.NamedType("keyEncryptionAlgorithm", rfc5280.AlgorithmIdentifier()),
        namedtype.NamedType("encryptedKey", univ.OctetString()),
    )
)
"""KeyTransRecipientInfo."""


def _content_info(content: univ.Sequence) -> univ.Sequence:
    """ContentInfo with its content typed (not ANY): pyasn1 0.6 loses the end-of-contents octets of an
    indefinite-length value inside an ANY, which BER streaming encoders (OpenSSL's -stream) write."""
    return univ.Sequence(
        componentType=namedtype.NamedTypes(
            namedtype.NamedType("contentType", univ.ObjectIdentifier()),
            namedtype.NamedType("content", content.subtype(explicitTag=_context(0))),
        )
    )


SIGNED_CONTENT: Final = _content_info(SIGNED_DATA)
ENVELOPED_CONTENT: Final = _content_info(ENVELOPED_DATA)

ISSUER_AND_SUBJECT: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        namedtype.NamedType("issuer", rfc5280.Name()),
        namedtype.NamedType("subject", rfc5280.Name()),
    )
)
"""CertPoll's messageData (RFC 8894 §3.3.3)."""

SMIME_CAPABILITIES_SPEC: Final = univ.SequenceOf(
    componentType=univ.Sequence(
        componentType=namedtype.NamedTypes(
            namedtype.NamedType("capabilityID", univ.ObjectIdentifier()),
            namedtype.OptionalNamedType("parameters", univ.Any()),
        )
    )
)
"""RFC 8551 §2.5.2: what a client says it can decrypt (some put it in their CSR)."""

REQUEST_INFO: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        namedtype.NamedType("version", univ.Integer()),
        namedtype.NamedType("subject", univ.Any()),
        namedtype.NamedType("subjectPKInfo", univ.Any()),
        namedtype.NamedType(
            "attributes", univ.SetOf(componentType=rfc5652.Attribute()).subtype(implicitTag=_context(0))
        ),
    )
)
CERTIFICATION_REQUEST: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        namedtype.NamedType("certificationRequestInfo", REQUEST_INFO),
        namedtype.NamedType("signatureAlgorithm", univ.Any()),
        namedtype.NamedType("signature", univ.BitString()),
    )
)
SIGNED_REQUEST: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        namedtype.NamedType("certificationRequestInfo", univ.Any()),
        namedtype.NamedType("signatureAlgorithm", rfc5280.AlgorithmIdentifier()),
        namedtype.NamedType("signature", univ.BitString()),
    )
)
"""PKCS#10 with the subject and key left opaque: we read its attributes (cryptography reads the rest), or, with
SIGNED_REQUEST, the exact bytes its signature covers."""


def decode(data: bytes, spec: Any, what: str, fail_info: FailInfo = FailInfo.BAD_REQUEST) -> Any:
    """BER (so DER too) bytes as `spec`, the whole of them; a ScepError naming `what` otherwise."""
    try:
        value, rest = ber_decoder.decode(bytes(data), asn1Spec=spec)
    except (PyAsn1Error, ValueError, TypeError, IndexError, KeyError, OverflowError, RecursionError):
        raise ScepError(fail_info, f"the {what} does not parse") from None
    if rest:
        raise ScepError(fail_info, f"the {what} has {len(rest)} bytes of trailing data")
    return value


def encode(value: base.Asn1Item) -> bytes:
    return bytes(der_encoder.encode(value))


def dotted(oid_der: bytes) -> str:
    """An OBJECT IDENTIFIER's DER (tag, length, arcs) as dotted text; ValueError when it is not one."""
    if len(oid_der) < 3 or oid_der[0] != 0x06 or oid_der[1] != len(oid_der) - 2 or oid_der[-1] & 0x80:
        raise ValueError("not a short OBJECT IDENTIFIER")
    arcs, value = [], 0
    for byte in oid_der[2:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))


def decode_any(value: univ.Any | bytes, what: str) -> Any:
    """An ANY's content decoded by its own tag (an attribute value)."""
    return decode(bytes(value), None, what)


def text_of(value: univ.Any | bytes, what: str) -> str:
    """A string-typed attribute value (PrintableString, UTF8String, IA5String...) as text."""
    decoded = decode_any(value, what)
    if not isinstance(decoded, char.AbstractCharacterString):
        raise ScepError(FailInfo.BAD_REQUEST, f"the {what} is not a string")
    text = str(decoded)
    if len(text) > _MAX_STRING:
        raise ScepError(FailInfo.BAD_REQUEST, f"the {what} is too long")
    return text


def octets_of(value: univ.Any | bytes, what: str) -> bytes:
    decoded = decode_any(value, what)
    if not isinstance(decoded, univ.OctetString) or isinstance(decoded, char.AbstractCharacterString):
        raise ScepError(FailInfo.BAD_REQUEST, f"the {what} is not an OCTET STRING")
    octets = bytes(decoded)
    if len(octets) > _MAX_STRING:
        raise ScepError(FailInfo.BAD_REQUEST, f"the {what} is too long")
    return octets


def time_of(value: univ.Any | bytes, what: str) -> dt.datetime:
    decoded = decode_any(value, what)
    if not isinstance(decoded, (useful.UTCTime, useful.GeneralizedTime)):
        raise ScepError(FailInfo.BAD_REQUEST, f"the {what} is not a time")
    try:
        when = decoded.asDateTime
    except (PyAsn1Error, ValueError):
        raise ScepError(FailInfo.BAD_REQUEST, f"the {what} is not a valid time") from None
    if not isinstance(when, dt.datetime):
        raise ScepError(FailInfo.BAD_REQUEST, f"the {what} is not a valid time")
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def load_name(name: base.Asn1Item, what: str) -> x509.Name:
    """A pyasn1 Name as cryptography's (attribute types and string values; equal to the same name in another
    string type, as cryptography compares names)."""
    try:
        rdns = []
        for rdn in name["rdnSequence"]:
            attributes = []
            for pair in rdn:
                oid = ObjectIdentifier(str(pair["type"]))
                value = decode_any(pair["value"], what)
                if isinstance(value, char.AbstractCharacterString):
                    attributes.append(x509.NameAttribute(oid, str(value)))
                else:
                    raise ScepError(FailInfo.BAD_REQUEST, f"the {what} has a value that is not a string")
            rdns.append(x509.RelativeDistinguishedName(attributes))
        return x509.Name(rdns)
    except ScepError:
        raise
    except (PyAsn1Error, ValueError, TypeError, KeyError):
        raise ScepError(FailInfo.BAD_REQUEST, f"the {what} is not a valid name") from None


def is_issuer_and_serial_of(item: base.Asn1Item, certificate: x509.Certificate) -> bool:
    """Whether an IssuerAndSerialNumber names `certificate`."""
    try:
        return (
            int(item["serialNumber"]) == certificate.serial_number
            and load_name(item["issuer"], "issuer name") == certificate.issuer
        )
    except ScepError:
        return False
