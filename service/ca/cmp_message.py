"""PKIMessage (RFC 4210 5.1, RFC 9483 3): the envelope. Reading a request into a `CmpMessage` (its header, its
body as bytes for cmp_request to read, the protected part, the protection and extraCerts), and the parts an answer
is written from (cmp_response puts them together).

    message = load_pki_message(der)                  # CmpError(badDataFormat, unsupportedVersion, ...)
    # then cmp_verify: verify_mac_protection(message, secret) or verify_signature_protection(message, issuers, ...)

What the cmp modules check, and what they leave to their caller (which holds the state):
- here: the DER, pvno 2 or 3, a transactionID, a senderNonce of 16 to 64 bytes, a body a client sends (ir, cr, kur,
  p10cr, certConf, rr, genm), readable extraCerts and MAC parameters; in cmp_verify the protection itself.
- the caller: which secret a senderKID names, and whether it is unspent and unexpired (notAuthorized when not);
  whether the signer is revoked (certRevoked); that a transactionID opening a transaction (ir, cr, kur, p10cr, rr,
  genm) was not seen before (transactionIdInUse); that a certConf belongs to a transaction it holds, protected by
  the same secret or signer (cmp_confirm.check_confirmation does the rest); the messageTime (`check_message_time`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from cryptography import x509

from service.ca.cmp_der import (
    AlgorithmId,
    bit_string,
    content,
    explicit,
    fields,
    generalized_time,
    generalized_time_der,
    integer,
    integer_der,
    oid_der,
    oid_text,
    split,
)
from service.ca.cmp_failures import CmpError, FailInfo
from service.ca.cmp_header import CmpHeader
from service.ca.cmp_names import NULL_DN
from service.ca.cmp_protection import MacAlgorithm, is_mac_algorithm, load_mac_algorithm
from service.ca.der import tlv

PVNO_CMP2000: Final = 2
PVNO_CMP2021: Final = 3  # RFC 9480: only when a CMPv3 feature is used (hashAlg in certConf, EnvelopedData)
MAX_MESSAGE_BYTES: Final = 64 * 1024
NONCE_BYTES: Final = 16  # RFC 9483 3.1: 128 bits
BODY_TYPES: Final = (  # PKIBody's alternatives, by tag number [0]..[26]
    *("ir", "ip", "cr", "cp", "p10cr", "popdecc", "popdecr", "kur", "kup", "krr", "krp", "rr", "rp", "ccr", "ccp"),
    *("ckuann", "cann", "rann", "crlann", "pkiconf", "nested", "genm", "genp", "error", "certConf", "pollReq"),
    "pollRep",
)
REQUEST_TYPES: Final = frozenset({"ir", "cr", "kur", "p10cr", "certConf", "rr", "genm"})
IMPLICIT_CONFIRM: Final = "1.3.6.1.5.5.7.4.13"  # id-it-implicitConfirm
_GRANTED: Final = tlv(0xA8, tlv(0x30, tlv(0x30, oid_der(IMPLICIT_CONFIRM), b"\x05\x00")))  # generalInfo


@dataclass(frozen=True)
class CmpMessage:
    header: CmpHeader
    body_type: str  # "ir", "cr", "kur", "p10cr", "certConf", "rr" or "genm"
    body: bytes  # the body's content (inside its [n] tag)
    protected_part: bytes  # DER of ProtectedPart ::= SEQUENCE { header, body }, as the sender protected it
    protection_algorithm: AlgorithmId | None
    protection: bytes | None
    extra_certs: tuple[x509.Certificate, ...]
    mac_algorithm: MacAlgorithm | None = None  # its parameters, read once, when MAC-protected

    @property
    def protection_kind(self) -> str | None:
        """Which protection the message carries: "mac", "signature", or None (unprotected)."""
        if self.protection_algorithm is None or self.protection is None:
            return None
        return "mac" if is_mac_algorithm(self.protection_algorithm) else "signature"

    def error(self, fail_info: FailInfo, detail: str) -> CmpError:
        """A refusal of the message as a whole (its protection, its sender, its transaction): answered with an
        `error` message (RFC 9483 3.5, 3.6.4) carrying this request's transactionID and nonces."""
        return CmpError(fail_info, detail, header=self.header)

    def rejection(self, fail_info: FailInfo, detail: str) -> CmpError:
        """A refusal of what the request asks (its template, its POP, the certificate to revoke): answered with
        a rejected ip/cp/kup or rp (RFC 9483 4.1.1, 4.2); a certConf or genm still gets an `error`."""
        return CmpError(fail_info, detail, header=self.header, body_type=self.body_type)


def load_pki_message(der: bytes) -> CmpMessage:
    """DER PKIMessage -> CmpMessage. CmpError: badDataFormat (not DER, truncated, trailing bytes, bad
    extraCerts), unsupportedVersion, badRequest (a body a client does not send, or no transactionID),
    badSenderNonce (missing or short), badAlg (MAC parameters this CA does not take)."""
    if len(der) > MAX_MESSAGE_BYTES:
        raise CmpError(FailInfo.badDataFormat, f"the message is over {MAX_MESSAGE_BYTES} bytes")
    try:
        parts = split(der)
        if len(parts) < 2 or parts[0][0] != 0x30:
            raise ValueError("a PKIMessage is SEQUENCE { header, body, ... }")
        header, algorithm, problem = _read_header(parts[0][1])
    except (ValueError, UnicodeDecodeError) as exc:
        raise CmpError(FailInfo.badDataFormat, f"not a DER PKIMessage ({exc})") from None
    _check(header, problem)
    body_tag, body_tlv = parts[1]
    number = body_tag - 0xA0
    if not 0 <= number < len(BODY_TYPES) or BODY_TYPES[number] not in REQUEST_TYPES:
        raise CmpError(FailInfo.badRequest, "this CA answers ir, cr, kur, p10cr, certConf, rr and genm", header=header)
    try:
        body = _content(body_tlv)
        protection, extra_certs = _trailer(parts[2:])
    except ValueError as exc:
        raise CmpError(FailInfo.badDataFormat, f"not a DER PKIMessage ({exc})", header=header) from None
    mac = None
    if algorithm is not None and is_mac_algorithm(algorithm):
        try:
            mac = load_mac_algorithm(algorithm)  # refused here (badAlg) rather than after the caller's look-up
        except CmpError as exc:
            raise CmpError(exc.fail_info, exc.detail, header=header) from None
    return CmpMessage(
        header=header,
        body_type=BODY_TYPES[number],
        body=body,
        protected_part=tlv(0x30, parts[0][1], body_tlv),
        protection_algorithm=algorithm,
        protection=protection,
        extra_certs=extra_certs,
        mac_algorithm=mac,
    )


def _read_header(der: bytes) -> tuple[CmpHeader, AlgorithmId | None, str | None]:
    """PKIHeader (RFC 4210 5.1.1) by hand: pvno, sender, recipient, then [0]..[8], each at most once, in order.
    Returns the header, its protectionAlg, and what is wrong with its messageTime (checked after the rest)."""
    parts = fields(der)
    if len(parts) < 3:
        raise ValueError("a PKIHeader starts with pvno, sender and recipient")
    (_, pvno), (_, sender), (_, recipient), *optional = parts
    values: dict[int, bytes] = {}
    for tag_octet, element in optional:
        number = tag_octet - 0xA0
        if not 0 <= number <= 8 or any(seen >= number for seen in values):
            raise ValueError("header fields out of order, repeated or unknown")
        values[number] = explicit(element, tag_octet)
    message_time, problem = None, None
    if 0 in values:
        try:
            message_time = generalized_time(values[0])
        except (ValueError, UnicodeDecodeError):
            problem = "messageTime is not a GeneralizedTime"
    if 7 in values:
        fields(values[7])  # freeText: a SEQUENCE OF UTF8String, read by no one here
    implicit_confirm = 8 in values and any(
        oid_text(fields(item)[0][1]) == IMPLICIT_CONFIRM for _, item in fields(values[8])
    )
    header = CmpHeader(
        pvno=integer(pvno),
        sender=sender,
        recipient=recipient,
        transaction_id=content(values[4], 0x04) if 4 in values else b"",
        sender_nonce=content(values[5], 0x04) if 5 in values else b"",
        recip_nonce=content(values[6], 0x04) if 6 in values else None,
        sender_kid=content(values[2], 0x04) if 2 in values else None,
        message_time=message_time,
        implicit_confirm=implicit_confirm,
    )
    if 3 in values:
        content(values[3], 0x04)  # recipKID: an OCTET STRING, unused
    return header, AlgorithmId.read(values[1]) if 1 in values else None, problem


def _check(header: CmpHeader, time_problem: str | None) -> None:
    if header.pvno not in (PVNO_CMP2000, PVNO_CMP2021):
        raise CmpError(FailInfo.unsupportedVersion, f"pvno {header.pvno} is not supported (2 or 3)", header=header)
    if not 1 <= len(header.transaction_id) <= 64:
        raise CmpError(FailInfo.badRequest, "the header needs a transactionID (1 to 64 bytes)", header=header)
    if not NONCE_BYTES <= len(header.sender_nonce) <= 64:
        raise CmpError(FailInfo.badSenderNonce, f"the senderNonce must be {NONCE_BYTES} to 64 bytes", header=header)
    if time_problem is not None:
        raise CmpError(FailInfo.badDataFormat, time_problem, header=header)


def _content(element: bytes) -> bytes:
    """The one element inside an [n] EXPLICIT."""
    return explicit(element, element[0])


def _trailer(parts: list[tuple[int, bytes]]) -> tuple[bytes | None, tuple[x509.Certificate, ...]]:
    protection: bytes | None = None
    certificates: tuple[x509.Certificate, ...] = ()
    for tag_octet, element in parts:
        if tag_octet == 0xA0 and protection is None and not certificates:
            protection = bit_string(_content(element))
        elif tag_octet == 0xA1 and not certificates:
            listed = split(_content(element))
            if not listed:
                raise ValueError("extraCerts is SIZE (1..MAX)")
            certificates = tuple(_certificate(der) for _, der in listed)
        else:
            raise ValueError("unexpected element after the body")
    return protection, certificates


def _certificate(der: bytes) -> x509.Certificate:
    """cryptography reads names, validity and extensions lazily: a broken one must fail here (badDataFormat), not
    as a ValueError in a later check (the fuzzer found both)."""
    tbs = fields(fields(der)[0][1])
    if integer(tbs[1 if tbs[0][0] == 0xA0 else 0][1]) <= 0:  # cryptography only warns (RFC 5280 4.1.2.2)
        raise ValueError("a certificate whose serial number is not positive")
    try:
        certificate = x509.load_der_x509_certificate(der)
        _ = (certificate.subject, certificate.issuer, certificate.extensions)
        _ = (certificate.not_valid_before_utc, certificate.not_valid_after_utc)
    except Exception as exc:  # ValueError, and DuplicateExtension and friends, which are not ValueErrors
        raise ValueError(f"an extraCerts certificate does not read ({type(exc).__name__})") from None
    return certificate


def check_recipient(header: CmpHeader, names: Collection[x509.Name]) -> None:
    """CmpError(wrongAuthority) unless the recipient is one of `names` (the RA's, this CA's issuers') or the
    NULL-DN, which openssl cmp sends when given no -recipient, -srvcert, -issuer or -cert."""
    if header.recipient != NULL_DN and header.recipient_name not in names:
        raise CmpError(FailInfo.wrongAuthority, "the recipient is not this CA", header=header)


def check_message_time(header: CmpHeader, *, now: dt.datetime, tolerance: dt.timedelta) -> None:
    """CmpError(badTime) when the header carries a messageTime further than `tolerance` from `now`."""
    if header.message_time is not None and abs(header.message_time - now) > tolerance:
        raise CmpError(FailInfo.badTime, f"messageTime is more than {tolerance} from this CA's clock", header=header)


# --- writing -----------------------------------------------------------------------------------------------------


def fresh_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def build_header(
    *,
    pvno: int,
    sender: bytes,
    recipient: bytes,
    now: dt.datetime,
    protection_algorithm: AlgorithmId,
    sender_kid: bytes | None,
    transaction_id: bytes,
    sender_nonce: bytes,
    recip_nonce: bytes | None,
    implicit_confirm: bool = False,
) -> bytes:
    """PKIHeader DER: pvno, sender and recipient (GeneralNames, whole), messageTime, protectionAlg, senderKID,
    transactionID, senderNonce, recipNonce, and generalInfo with implicitConfirm when granted."""
    parts = [
        integer_der(pvno),
        sender,
        recipient,
        tlv(0xA0, generalized_time_der(now)),
        tlv(0xA1, protection_algorithm.der()),
        tlv(0xA2, tlv(0x04, sender_kid)) if sender_kid is not None else b"",
        tlv(0xA4, tlv(0x04, transaction_id)),
        tlv(0xA5, tlv(0x04, sender_nonce)),
        tlv(0xA6, tlv(0x04, recip_nonce)) if recip_nonce is not None else b"",
        _GRANTED if implicit_confirm else b"",
    ]
    return tlv(0x30, *parts)


def assemble(header: bytes, body_tag: int, body: bytes, protection: bytes, extra_certs: list[bytes]) -> bytes:
    """PKIMessage from a written header, the body's content and the protection over ProtectedPart."""
    parts = [header, tlv(0xA0 | body_tag, body), tlv(0xA0, tlv(0x03, b"\x00", protection))]
    if extra_certs:
        parts.append(tlv(0xA1, tlv(0x30, *extra_certs)))
    return tlv(0x30, *parts)


def protected_part(header: bytes, body_tag: int, body: bytes) -> bytes:
    return tlv(0x30, header, tlv(0xA0 | body_tag, body))
