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
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ, useful
from pyasn1_modules import rfc5280

from service.ca.cmp_asn1 import (
    ID_IT_IMPLICIT_CONFIRM,
    INFO_TYPE_AND_VALUE,
    PKI_HEADER,
    PVNO_CMP2000,
    PVNO_CMP2021,
    decode,
    encode,
    explicit_tag,
    read_tlv,
    split,
)
from service.ca.cmp_failures import CmpError, FailInfo
from service.ca.cmp_names import name_of
from service.ca.cmp_protection import is_mac_algorithm, load_mac_algorithm
from service.ca.der import tlv

MAX_MESSAGE_BYTES: Final = 64 * 1024
NONCE_BYTES: Final = 16  # RFC 9483 3.1: 128 bits
BODY_TYPES: Final = (  # PKIBody's alternatives, by tag number [0]..[26]
    *("ir", "ip", "cr", "cp", "p10cr", "popdecc", "popdecr", "kur", "kup", "krr", "krp", "rr", "rp", "ccr", "ccp"),
    *("ckuann", "cann", "rann", "crlann", "pkiconf", "nested", "genm", "genp", "error", "certConf", "pollReq"),
    "pollRep",
)
REQUEST_TYPES: Final = frozenset({"ir", "cr", "kur", "p10cr", "certConf", "rr", "genm"})


@dataclass(frozen=True)
class CmpHeader:
    """What a response needs from a request's header, and what the caller decides on."""

    pvno: int
    sender: bytes  # a GeneralName, whole (`sender_name` reads a directoryName)
    recipient: bytes
    transaction_id: bytes
    sender_nonce: bytes
    recip_nonce: bytes | None = None
    sender_kid: bytes | None = None
    message_time: dt.datetime | None = None
    implicit_confirm: bool = False

    @property
    def sender_name(self) -> x509.Name | None:
        return name_of(self.sender)

    @property
    def recipient_name(self) -> x509.Name | None:
        return name_of(self.recipient)


@dataclass(frozen=True)
class CmpMessage:
    header: CmpHeader
    body_type: str  # "ir", "cr", "kur", "p10cr", "certConf", "rr" or "genm"
    body: bytes  # the body's content (inside its [n] tag)
    protected_part: bytes  # DER of ProtectedPart ::= SEQUENCE { header, body }, as the sender protected it
    protection_algorithm: rfc5280.AlgorithmIdentifier | None
    protection: bytes | None
    extra_certs: tuple[x509.Certificate, ...]

    @property
    def protection_kind(self) -> str | None:
        """ "mac", "signature", or None for an unprotected message."""
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
    badSenderNonce (missing or short), badAlg (an unreadable protectionAlg)."""
    if len(der) > MAX_MESSAGE_BYTES:
        raise CmpError(FailInfo.badDataFormat, f"the message is over {MAX_MESSAGE_BYTES} bytes")
    try:
        parts = split(der)
        if len(parts) < 2 or parts[0][0] != 0x30:
            raise ValueError("a PKIMessage is SEQUENCE { header, body, ... }")
        raw_header = decode(parts[0][1], PKI_HEADER)
    except ValueError as exc:
        raise CmpError(FailInfo.badDataFormat, f"not a DER PKIMessage ({exc})") from None
    header = _header(raw_header)
    body_tag, body_tlv = parts[1]
    number = body_tag - 0xA0
    if not 0 <= number < len(BODY_TYPES) or BODY_TYPES[number] not in REQUEST_TYPES:
        raise CmpError(FailInfo.badRequest, "this CA answers ir, cr, kur, p10cr, certConf, rr and genm", header=header)
    body_type = BODY_TYPES[number]
    try:
        body = _content(body_tlv)
        protection, extra_certs = _trailer(parts[2:])
    except ValueError as exc:
        raise CmpError(FailInfo.badDataFormat, f"not a DER PKIMessage ({exc})", header=header) from None
    algorithm = raw_header["protectionAlg"] if raw_header["protectionAlg"].isValue else None
    if algorithm is not None and is_mac_algorithm(algorithm):
        try:
            load_mac_algorithm(algorithm)  # refused here (badAlg) rather than after the caller's look-up
        except CmpError as exc:
            raise CmpError(exc.fail_info, exc.detail, header=header) from None
    return CmpMessage(
        header=header,
        body_type=body_type,
        body=body,
        protected_part=tlv(0x30, parts[0][1], body_tlv),
        protection_algorithm=algorithm,
        protection=protection,
        extra_certs=extra_certs,
    )


def _header(raw: univ.Sequence) -> CmpHeader:
    pvno = int(raw["pvno"])
    transaction_id = raw["transactionID"].asOctets() if raw["transactionID"].isValue else b""
    sender_nonce = raw["senderNonce"].asOctets() if raw["senderNonce"].isValue else b""
    try:
        message_time, time_problem = _time(raw["messageTime"]), None
    except ValueError as exc:
        message_time, time_problem = None, str(exc)
    implicit_confirm = raw["generalInfo"].isValue and any(
        item["infoType"] == ID_IT_IMPLICIT_CONFIRM for item in raw["generalInfo"]
    )
    header = CmpHeader(
        pvno=pvno,
        sender=raw["sender"].asOctets(),
        recipient=raw["recipient"].asOctets(),
        transaction_id=transaction_id,
        sender_nonce=sender_nonce,
        recip_nonce=raw["recipNonce"].asOctets() if raw["recipNonce"].isValue else None,
        sender_kid=raw["senderKID"].asOctets() if raw["senderKID"].isValue else None,
        message_time=message_time,
        implicit_confirm=bool(implicit_confirm),
    )
    if pvno not in (PVNO_CMP2000, PVNO_CMP2021):
        raise CmpError(FailInfo.unsupportedVersion, f"pvno {pvno} is not supported (2 or 3)", header=header)
    if not 1 <= len(transaction_id) <= 64:
        raise CmpError(FailInfo.badRequest, "the header needs a transactionID (1 to 64 bytes)", header=header)
    if not NONCE_BYTES <= len(sender_nonce) <= 64:
        raise CmpError(FailInfo.badSenderNonce, f"the senderNonce must be {NONCE_BYTES} to 64 bytes", header=header)
    if time_problem is not None:
        raise CmpError(FailInfo.badDataFormat, time_problem, header=header)
    return header


def _time(value: useful.GeneralizedTime) -> dt.datetime | None:
    """messageTime in UTC (None when absent); ValueError when it is not a GeneralizedTime."""
    if not value.isValue:
        return None
    try:
        moment: dt.datetime = value.asDateTime
    except (PyAsn1Error, ValueError, TypeError, OverflowError):
        raise ValueError("messageTime is not a GeneralizedTime") from None
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _content(explicit: bytes) -> bytes:
    """The one element inside an [n] EXPLICIT."""
    (_, inner), *rest = split(explicit) or [(0, b"")]
    if rest or not inner:
        raise ValueError("an explicit tag holds exactly one element")
    return inner


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
    """cryptography reads extensions lazily: a broken one must fail here (badDataFormat), not in a later check."""
    certificate = x509.load_der_x509_certificate(der)
    _ = certificate.extensions
    return certificate


def bit_string(der: bytes) -> bytes:
    """The octets of a DER BIT STRING with no unused bits (a MAC or a signature)."""
    tag_octet, start, end = read_tlv(der, 0, len(der))
    if tag_octet != 0x03 or end != len(der) or start == end or der[start] != 0:
        raise ValueError("not a BIT STRING of whole octets")
    return der[start + 1 : end]


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
    protection_algorithm: rfc5280.AlgorithmIdentifier,
    sender_kid: bytes | None,
    transaction_id: bytes,
    sender_nonce: bytes,
    recip_nonce: bytes | None,
    implicit_confirm: bool = False,
) -> bytes:
    header = PKI_HEADER.clone()
    header["pvno"] = pvno
    header["sender"] = univ.Any(sender)
    header["recipient"] = univ.Any(recipient)
    header["messageTime"] = now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ")
    header["protectionAlg"]["algorithm"] = protection_algorithm["algorithm"]
    if protection_algorithm["parameters"].isValue:
        header["protectionAlg"]["parameters"] = protection_algorithm["parameters"]
    if sender_kid is not None:
        header["senderKID"] = sender_kid
    header["transactionID"] = transaction_id
    header["senderNonce"] = sender_nonce
    if recip_nonce is not None:
        header["recipNonce"] = recip_nonce
    if implicit_confirm:
        granted = INFO_TYPE_AND_VALUE.clone()
        granted["infoType"] = ID_IT_IMPLICIT_CONFIRM
        granted["infoValue"] = univ.Any(b"\x05\x00")
        header["generalInfo"].append(granted)
    return encode(header)


def assemble(header: bytes, body_tag: int, body: bytes, protection: bytes, extra_certs: list[bytes]) -> bytes:
    """PKIMessage from a written header, the body's content and the protection over ProtectedPart."""
    parts = [header, tlv(explicit_tag(body_tag), body), tlv(0xA0, tlv(0x03, b"\x00", protection))]
    if extra_certs:
        parts.append(tlv(0xA1, tlv(0x30, *extra_certs)))
    return tlv(0x30, *parts)


def protected_part(header: bytes, body_tag: int, body: bytes) -> bytes:
    return tlv(0x30, header, tlv(explicit_tag(body_tag), body))
