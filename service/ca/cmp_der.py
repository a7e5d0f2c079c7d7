"""Strict DER for CMP's hot path: every message's header, the MAC parameters openssl sends, CRMF requests, certConf,
and the answers' header and ip/cp/kup body, read and written by hand.

pyasn1 (cmp_asn1) decodes a 400-byte ir in about a millisecond; these few readers do the same work in a tenth of
it, which is what keeps a CMP enrolment within reach of POST /csr's CPU per certificate (bench/cmp_pure.py).
They take only DER: one-octet tags, definite minimal lengths, minimal INTEGERs, nothing after the end; anything
else is a ValueError, which the callers turn into a CmpError. tests/ca/test_cmp_der.py holds each of them to
pyasn1's reading and writing of the same structures.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from service.ca.der import tlv

# tags
INTEGER, BIT_STRING, OCTET_STRING, NULL, OID, SEQUENCE, SET = 0x02, 0x03, 0x04, 0x05, 0x06, 0x30, 0x31
GENERALIZED_TIME, UTC_TIME, BOOLEAN = 0x18, 0x17, 0x01


def read_tlv(der: bytes, position: int, end: int) -> tuple[int, int, int]:
    """(tag, where the value starts, where it ends) of the element at `position`: one-octet tags, definite and
    minimal lengths, inside `end`. ValueError otherwise."""
    if end - position < 2:
        raise ValueError("truncated element")
    tag_octet, first = der[position], der[position + 1]
    if tag_octet & 0x1F == 0x1F:
        raise ValueError("multi-octet tags are not used in CMP")
    if tag_octet & 0xDF == 0:
        raise ValueError("universal tag 0 is reserved (end-of-contents)")
    if first < 0x80:
        value, length = position + 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise ValueError("indefinite or oversized length")
        value = position + 2 + count
        if value > end:
            raise ValueError("truncated length")
        length = int.from_bytes(der[position + 2 : value], "big")
        if length < 0x80 or der[position + 2] == 0:
            raise ValueError("non-minimal length")
    if value + length > end:
        raise ValueError("truncated value")
    return tag_octet, value, value + length


def split(der: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, bytes]]:
    """The elements inside the constructed element that fills der[start:end], each as (tag, its whole TLV)."""
    end = len(der) if end is None else end
    tag_octet, value, stop = read_tlv(der, start, end)
    if stop != end:
        raise ValueError("bytes after the end")
    if not tag_octet & 0x20:
        raise ValueError("not a constructed element")
    parts = []
    position = value
    while position < stop:
        inner, _, after = read_tlv(der, position, stop)
        parts.append((inner, der[position:after]))
        position = after
    return parts


def fields(der: bytes, tag: int = SEQUENCE) -> list[tuple[int, bytes]]:
    """`split`, with the outer element's tag checked."""
    if not der or der[0] != tag:
        raise ValueError(f"expected tag {tag:#04x}")
    return split(der)


def content(der: bytes, tag: int) -> bytes:
    """The value of a primitive element with `tag` that fills `der`."""
    found, start, end = read_tlv(der, 0, len(der))
    if found != tag or end != len(der):
        raise ValueError(f"expected tag {tag:#04x}")
    return der[start:end]


def explicit(der: bytes, tag: int) -> bytes:
    """The one element inside [n] EXPLICIT (`tag` is its tag octet, 0xA0 | n)."""
    parts = fields(der, tag)
    if len(parts) != 1:
        raise ValueError("an explicit tag holds exactly one element")
    return parts[0][1]


def integer(der: bytes, tag: int = INTEGER) -> int:
    value = content(der, tag)
    if not value or (len(value) > 1 and (value[0], value[1] & 0x80) in ((0x00, 0), (0xFF, 0x80))):
        raise ValueError("not a minimal INTEGER")
    if len(value) > 64:
        raise ValueError("an INTEGER too large for CMP")
    return int.from_bytes(value, "big", signed=True)


def bit_string(der: bytes, tag: int = BIT_STRING) -> bytes:
    """The octets of a BIT STRING with no unused bits (a MAC, a signature, a public key)."""
    value = content(der, tag)
    if not value or value[0] != 0:
        raise ValueError("not a BIT STRING of whole octets")
    return value[1:]


def oid_text(der: bytes) -> str:
    """An OBJECT IDENTIFIER's whole TLV -> its dotted text; ValueError for a malformed one."""
    value = content(der, OID)
    if not value or value[-1] & 0x80:
        raise ValueError("not an OBJECT IDENTIFIER")
    arcs: list[int] = []
    number = 0
    for octet in value:
        if number == 0 and octet == 0x80:
            raise ValueError("non-minimal OBJECT IDENTIFIER arc")
        number = (number << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(number)
            number = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))


def generalized_time(der: bytes, tag: int = GENERALIZED_TIME) -> dt.datetime:
    """YYYYMMDDHHMMSS[.fff]Z (DER: UTC, no trailing zeros in the fraction) -> an aware datetime."""
    text = content(der, tag).decode("ascii")
    if not text.endswith("Z") or len(text) < 15 or (len(text) > 15 and (text[14] != "." or text[-2] == "0")):
        raise ValueError("not a DER GeneralizedTime")
    moment = dt.datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    if len(text) > 15:
        moment += dt.timedelta(microseconds=int(text[15:-1].ljust(6, "0")[:6]))
    return moment


def utc_time(der: bytes) -> dt.datetime:
    """YYMMDDHHMMSSZ (RFC 5280: 1950-2049)."""
    text = content(der, UTC_TIME).decode("ascii")
    if len(text) != 13 or not text.endswith("Z"):
        raise ValueError("not a DER UTCTime")
    moment = dt.datetime.strptime(text[:12], "%y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    return moment.replace(year=moment.year - 100) if moment.year >= 2050 else moment


@dataclass(frozen=True)
class AlgorithmId:
    """AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }."""

    oid: str
    parameters: bytes | None = None  # the parameters' whole TLV

    @classmethod
    def read(cls, der: bytes) -> AlgorithmId:
        parts = fields(der)
        if not 1 <= len(parts) <= 2:
            raise ValueError("an AlgorithmIdentifier is SEQUENCE { OID, parameters }")
        return cls(oid_text(parts[0][1]), parts[1][1] if len(parts) == 2 else None)

    def der(self) -> bytes:
        return tlv(SEQUENCE, oid_der(self.oid), self.parameters or b"")


# --- writing -----------------------------------------------------------------------------------------------------


def integer_der(value: int) -> bytes:
    """The minimal two's complement: -128 is one octet (0x80), -129 two."""
    magnitude = ~value if value < 0 else value
    return tlv(INTEGER, value.to_bytes(magnitude.bit_length() // 8 + 1, "big", signed=True))


@functools.lru_cache(maxsize=256)
def oid_der(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    numbers = [40 * arcs[0] + arcs[1], *arcs[2:]]
    value = bytearray()
    for number in numbers:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.append(0x80 | (number & 0x7F))
            number >>= 7
        value.extend(reversed(chunk))
    return tlv(OID, bytes(value))


def generalized_time_der(moment: dt.datetime) -> bytes:
    """Whole seconds, UTC (as RFC 5280 wants a GeneralizedTime)."""
    return tlv(GENERALIZED_TIME, moment.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ").encode())
