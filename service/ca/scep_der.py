"""The DER SCEP writes, by hand: CertRep's SignedData, the EnvelopedData inside it, their attributes.

Building these with pyasn1 objects costs about 2 ms of CPU per CertRep (a tree of a few hundred nodes, then
encoded); written directly they cost a few tens of microseconds (as `leaf.py` writes certificates). The structures
are fixed, so there is little to get wrong, and the tests read every one back with pyasn1, cryptography and
openssl. pyasn1 still reads everything that comes in (`scep_asn1`).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.ca.der import elements, tlv

SEQUENCE: Final = 0x30
SET: Final = 0x31
_PRINTABLE: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")


@functools.lru_cache(maxsize=128)
def oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            chunk.append(0x80 | (arc & 0x7F))
        body.extend(reversed(chunk))
    return tlv(0x06, bytes(body))


def integer(value: int) -> bytes:
    length = value.bit_length() // 8 + 1  # room for the sign bit
    return tlv(0x02, value.to_bytes(length, "big", signed=True))


def octets(value: bytes) -> bytes:
    return tlv(0x04, value)


def null() -> bytes:
    return b"\x05\x00"


def text(value: str) -> bytes:
    """A PrintableString when the text fits one (SCEP's own type for its string attributes), UTF8String if not."""
    return tlv(0x13 if set(value) <= _PRINTABLE else 0x0C, value.encode())


def utf8(value: str) -> bytes:
    return tlv(0x0C, value.encode())


def primitive(tag: int, value: bytes) -> bytes:
    return tlv(tag, value)


def tlv_set(content: bytes) -> bytes:
    """A SET OF of elements already joined, in the order given (a received SET, re-tagged)."""
    return tlv(SET, content)


def sequence(*parts: bytes) -> bytes:
    return tlv(SEQUENCE, *parts)


def set_of(*parts: bytes) -> bytes:
    """A SET OF in DER order (its elements sorted by their encodings)."""
    return tlv(SET, *sorted(parts))


def context(number: int, *parts: bytes) -> bytes:
    """A constructed [number]: EXPLICIT around one element, or IMPLICIT for a SET OF or SEQUENCE OF."""
    return tlv(0xA0 | number, *parts)


def time(when: dt.datetime) -> bytes:
    """UTCTime until 2049, GeneralizedTime after (RFC 5652 §11.3, RFC 5280 §4.1.2.5)."""
    when = when.astimezone(dt.UTC)
    if 1950 <= when.year < 2050:
        return tlv(0x17, when.strftime("%y%m%d%H%M%SZ").encode())
    return tlv(0x18, when.strftime("%Y%m%d%H%M%SZ").encode())


def algorithm(dotted: str, parameters: bytes | None = None) -> bytes:
    return sequence(oid(dotted), parameters or b"")


def attribute(dotted: str, value: bytes) -> bytes:
    """Attribute ::= SEQUENCE { attrType OID, attrValues SET OF ANY } with one value."""
    return sequence(oid(dotted), tlv(SET, value))


def content_info(content_type: str, content: bytes) -> bytes:
    return sequence(oid(content_type), context(0, content))


@functools.lru_cache(maxsize=64)
def issuer_and_serial(certificate: x509.Certificate) -> bytes:
    """IssuerAndSerialNumber of `certificate`, its issuer exactly as the certificate has it (clients compare the
    bytes; cryptography's re-encoding of a name could differ from the original in rare cases)."""
    return sequence(raw_issuer(certificate), integer(certificate.serial_number))


def raw_issuer(certificate: x509.Certificate) -> bytes:
    """The issuer Name's DER as it stands in the certificate (cryptography's re-encoding if the walk fails)."""
    der = certificate.public_bytes(Encoding.DER)
    try:
        ((_, _, start, end),) = elements(der, 0, len(der))
        (_, _, tbs_start, tbs_end), *_ = elements(der, start, end)
        fields = list(elements(der, tbs_start, tbs_end))
        if fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        tag, at, _, until = fields[2]  # serialNumber, signature, issuer
    except (ValueError, IndexError):
        return certificate.issuer.public_bytes()
    return der[at:until] if tag == SEQUENCE else certificate.issuer.public_bytes()
