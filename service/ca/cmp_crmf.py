"""CRMF (RFC 4211) read by hand: CertReqMessages (ir, cr, kur), the CertTemplate they and rr carry, Extensions,
Controls. Only what pocketca reads is kept; everything is checked to be DER and in order (cmp_der), and anything
else is a ValueError that cmp_request turns into a CmpError. tests/ca/test_cmp_der.py holds these readers to
pyasn1-modules' rfc4211 for the same input.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from service.ca.cmp_der import (
    BOOLEAN,
    GENERALIZED_TIME,
    OCTET_STRING,
    SEQUENCE,
    UTC_TIME,
    AlgorithmId,
    bit_string,
    content,
    explicit,
    fields,
    generalized_time,
    integer,
    oid_text,
    utc_time,
)


@dataclass(frozen=True)
class Extension:
    oid: str
    critical: bool
    value: bytes  # extnValue's content (the extension's own DER)


@dataclass(frozen=True)
class Template:
    """The CertTemplate fields pocketca reads; the rest (version, signingAlg, UIDs) are checked to be DER only."""

    serial_number: int | None = None
    issuer: bytes | None = None  # a Name's DER
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    subject: bytes | None = None  # a Name's DER
    public_key: bytes | None = None  # a SubjectPublicKeyInfo's DER
    extensions: tuple[Extension, ...] = ()


@dataclass(frozen=True)
class Pop:
    """ProofOfPossession: "raVerified", "signature" (with its algorithm and value), or another kind."""

    kind: str | None
    algorithm: AlgorithmId | None = None
    signature: bytes = b""
    with_input: bool = False  # a POPOSigningKeyInput was given (RFC 9483 does not use it)


@dataclass(frozen=True)
class CertReqMsg:
    cert_req_id: int
    template: Template
    controls: tuple[tuple[str, bytes], ...]  # (type, value's whole TLV)
    pop: Pop
    cert_req: bytes = field(repr=False)  # the CertRequest exactly as sent: what a signature POP signs


def read_cert_req_messages(der: bytes) -> list[CertReqMsg]:
    messages = fields(der)
    if not messages:
        raise ValueError("CertReqMessages is SIZE (1..MAX)")
    return [_cert_req_msg(message) for _, message in messages]


def _cert_req_msg(der: bytes) -> CertReqMsg:
    parts = fields(der)
    if not 1 <= len(parts) <= 3:
        raise ValueError("CertReqMsg is SEQUENCE { certReq, popo, regInfo }")
    cert_req = parts[0][1]
    request = fields(cert_req)
    if not 2 <= len(request) <= 3:
        raise ValueError("CertRequest is SEQUENCE { certReqId, certTemplate, controls }")
    controls = tuple(_attribute(item) for _, item in fields(request[2][1])) if len(request) == 3 else ()
    rest = parts[1:]
    pop = Pop(None)
    if rest and rest[0][0] != SEQUENCE:  # popo is a context-tagged CHOICE; regInfo a SEQUENCE
        pop = _pop(*rest.pop(0))
    if rest:
        fields(rest[0][1])  # regInfo: unused, but DER
    return CertReqMsg(integer(request[0][1]), read_template(request[1][1]), controls, pop, cert_req)


def _attribute(der: bytes) -> tuple[str, bytes]:
    parts = fields(der)
    if len(parts) != 2:
        raise ValueError("AttributeTypeAndValue is SEQUENCE { type, value }")
    return oid_text(parts[0][1]), parts[1][1]


def _pop(tag: int, der: bytes) -> Pop:
    if tag == 0x80:  # raVerified [0] NULL
        if der != b"\x80\x00":
            raise ValueError("raVerified is NULL")
        return Pop("raVerified")
    if tag == 0xA1:  # signature [1] POPOSigningKey
        parts = fields(der, 0xA1)
        with_input = bool(parts) and parts[0][0] == 0xA0
        if with_input:
            parts = parts[1:]
        if len(parts) != 2:
            raise ValueError("POPOSigningKey is SEQUENCE { poposkInput, algorithmIdentifier, signature }")
        return Pop("signature", AlgorithmId.read(parts[0][1]), bit_string(parts[1][1]), with_input)
    if tag in (0xA2, 0xA3):
        return Pop("keyEncipherment" if tag == 0xA2 else "keyAgreement")
    raise ValueError("an unknown kind of proof of possession")


_TEMPLATE_TAGS = (0x80, 0x81, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0x87, 0x88, 0xA9)  # [0]..[9], as RFC 4211 tags them


def read_template(der: bytes) -> Template:
    values: dict[int, bytes] = {}
    for tag, element in fields(der):
        number = tag & 0x1F
        if number > 9 or tag != _TEMPLATE_TAGS[number] or any(seen >= number for seen in values):
            raise ValueError("CertTemplate fields out of order, repeated or unknown")
        values[number] = element
    not_before = not_after = None
    if 4 in values:
        for tag, time in fields(values[4], 0xA4):
            if tag not in (0xA0, 0xA1) or (tag == 0xA0 and not_before) or not_after:
                raise ValueError("OptionalValidity is SEQUENCE { [0] notBefore, [1] notAfter }")
            moment = _time(explicit(time, tag))
            not_before, not_after = (moment, not_after) if tag == 0xA0 else (not_before, moment)
    if 0 in values:
        integer(values[0], 0x80)
    if 2 in values:
        AlgorithmId.read(b"\x30" + values[2][1:])
    for unique_id in (values.get(7), values.get(8)):
        if unique_id is not None and (len(unique_id) < 3 or unique_id[2] > 7):
            raise ValueError("a UniqueIdentifier is a BIT STRING")
    return Template(
        serial_number=integer(values[1], 0x81) if 1 in values else None,
        issuer=_name(explicit(values[3], 0xA3)) if 3 in values else None,
        not_before=not_before,
        not_after=not_after,
        subject=_name(explicit(values[5], 0xA5)) if 5 in values else None,
        public_key=_public_key(values[6]) if 6 in values else None,
        extensions=read_extensions(b"\x30" + values[9][1:]) if 9 in values else (),
    )


def _name(der: bytes) -> bytes:
    """A Name's DER, its shape checked (SEQUENCE OF SET OF SEQUENCE { OID, value }); cmp_names reads the values."""
    for _, rdn in fields(der):
        for _, attribute in fields(rdn, 0x31) or [(0, b"")]:
            parts = fields(attribute)
            if len(parts) != 2:
                raise ValueError("an attribute is SEQUENCE { type, value }")
            oid_text(parts[0][1])
    return der


def _public_key(der: bytes) -> bytes:
    """[6] IMPLICIT SubjectPublicKeyInfo, retagged as the SEQUENCE cryptography loads."""
    spki = b"\x30" + der[1:]
    parts = fields(spki)
    if len(parts) != 2:
        raise ValueError("SubjectPublicKeyInfo is SEQUENCE { algorithm, subjectPublicKey }")
    AlgorithmId.read(parts[0][1])
    bit_string(parts[1][1])
    return spki


def _time(der: bytes) -> dt.datetime:
    if der[:1] == bytes((GENERALIZED_TIME,)):
        return generalized_time(der)
    if der[:1] == bytes((UTC_TIME,)):
        return utc_time(der)
    raise ValueError("a Time is a UTCTime or a GeneralizedTime")


def read_extensions(der: bytes) -> tuple[Extension, ...]:
    """Extensions ::= SEQUENCE OF SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }."""
    extensions = []
    for _, extension in fields(der):
        parts = fields(extension)
        critical = False
        if len(parts) == 3:
            flag = content(parts[1][1], BOOLEAN)
            if flag != b"\xff":  # DER: TRUE is 0xFF, and FALSE is left out (DEFAULT)
                raise ValueError("a critical flag that is not DER TRUE")
            critical, parts = True, [parts[0], parts[2]]
        if len(parts) != 2:
            raise ValueError("Extension is SEQUENCE { extnID, critical, extnValue }")
        extensions.append(Extension(oid_text(parts[0][1]), critical, content(parts[1][1], OCTET_STRING)))
    return tuple(extensions)
