"""Putting a signature made elsewhere (an HSM) into a structure cryptography encoded.

cryptography signs only with its own key objects. A key store whose key lives in a PKCS#11 token lets cryptography
encode the whole structure, signed by a stand-in key of the same type and hash -- so the signatureAlgorithm, and
with it every byte of the to-be-signed part, is exactly what the real key's would be -- then signs those
to-be-signed bytes with the token and swaps the stand-in's signature for the token's. Certificates and CRLs
(SEQUENCE { tbs, signatureAlgorithm, BIT STRING }) and OCSP responses (the same shape, inside responseBytes).
"""

from __future__ import annotations

from collections.abc import Iterator


def der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, *parts: bytes) -> bytes:
    return b"".join((bytes((tag,)), der_length(sum(len(part) for part in parts)), *parts))


def elements(der: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(tag, where the element starts, where its value starts, where it ends) for each element in der[start:end]."""
    position = start
    while position < end:
        tag, first = der[position], der[position + 1]
        value = position + 2 + (first & 0x7F if first & 0x80 else 0)
        length = int.from_bytes(der[position + 2 : value], "big") if first & 0x80 else first
        if value + length > end:
            raise ValueError("truncated DER")
        yield tag, position, value, value + length
        position = value + length


def _children(der: bytes) -> list[tuple[int, int, int, int]]:
    ((tag, _, start, end),) = elements(der, 0, len(der))
    if tag != 0x30:
        raise ValueError("not a DER SEQUENCE")
    return list(elements(der, start, end))


def with_signature(signed: bytes, signature: bytes) -> bytes:
    """`signed` (SEQUENCE { tbs, signatureAlgorithm, BIT STRING signature, ... }) with `signature` instead."""
    parts = _children(signed)
    if len(parts) < 3 or parts[2][0] != 0x03:
        raise ValueError("not a signed structure")
    (_, tbs_at, _, _), (_, _, _, algorithm_end), (_, _, _, signature_end) = parts[:3]
    rest = signed[signature_end : parts[-1][3]]
    return tlv(0x30, signed[tbs_at:algorithm_end], tlv(0x03, b"\x00", signature), rest)


def tbs_of(signed: bytes) -> bytes:
    """The to-be-signed part (the first element) of a signed structure."""
    _, start, _, end = _children(signed)[0]
    return signed[start:end]


def basic_ocsp_response(response: bytes) -> tuple[bytes, bytes, bytes]:
    """An OCSPResponse split as (before, BasicOCSPResponse, after), so the inner one can be re-signed and put back
    (`ocsp_with_basic`). OCSPResponse ::= SEQUENCE { status, [0] EXPLICIT SEQUENCE { OID, OCTET STRING } }."""
    status, explicit = _children(response)[:2]
    if status[0] != 0x0A or explicit[0] != 0xA0:
        raise ValueError("not a successful OCSPResponse")
    ((_, _, bytes_start, bytes_end),) = elements(response, explicit[2], explicit[3])
    _, (tag, _, inner_start, inner_end) = elements(response, bytes_start, bytes_end)
    if tag != 0x04:
        raise ValueError("responseBytes without an OCTET STRING")
    return response[:inner_start], response[inner_start:inner_end], response[inner_end:]


def ocsp_with_basic(response: bytes, basic: bytes) -> bytes:
    """`response` (a successful OCSPResponse) with its BasicOCSPResponse replaced by `basic`."""
    status, explicit = _children(response)[:2]
    ((_, _, bytes_start, bytes_end),) = elements(response, explicit[2], explicit[3])
    (_, oid_at, _, oid_end), _ = elements(response, bytes_start, bytes_end)
    inner = tlv(0x30, response[oid_at:oid_end], tlv(0x04, basic))
    return tlv(0x30, response[status[1] : status[3]], tlv(0xA0, inner))
