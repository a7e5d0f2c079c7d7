"""Reading a request pkiMessage (RFC 8894 §3.2): verify, decrypt, and say what it asks.

`load_pki_message` turns the bytes of a PKIOperation into a `PkiRequest`, or raises a `ScepError` whose
`fail_info` is what the CertRep FAILURE says and whose `reply` (when the signed attributes could be read) is whom to
say it to. What it checks, in order:

1. the bytes are a CMS SignedData with one signer, its certificate inside, and signed attributes (badRequest);
2. transactionID and senderNonce are there (badRequest, and nobody to answer: HTTP 400);
3. the digest is one we support (badAlg), contentType and messageDigest match the content and the signature
   verifies with the signer's certificate (badMessageCheck);
4. messageType is a request type (badRequest); signingTime, if sent, is within `max_clock_skew` (badTime);
5. the signer's key is RSA, since a SUCCESS is enveloped to it (badAlg);
6. the envelope is addressed to the RA (badCertId), uses a cipher we know (badAlg), and opens (badMessageCheck);
7. its content is what the message type says: a PKCS#10 request, an IssuerAndSubject, an IssuerAndSerialNumber.

What it does not check, because it needs the database or the policy: the challenge, whether a transaction id was
seen before, and whether a RenewalReq's signer is a current certificate of ours (`check_renewal_signer` does the
pure part of that).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa

from service.ca.scep_asn1 import MESSAGE_TYPE, SENDER_NONCE, SIGNING_TIME, TRANSACTION_ID, octets_of, text_of, time_of
from service.ca.scep_content import (
    CertificationRequest,
    IssuerAndSerial,
    IssuerAndSubject,
    load_certification_request,
    load_issuer_and_serial,
    load_issuer_and_subject,
)
from service.ca.scep_envelope import open_envelope
from service.ca.scep_signed import SignedMessage, load_signed_message, verify_signed_message
from service.ca.scep_types import (
    REQUEST_TYPES,
    Digest,
    FailInfo,
    MessageType,
    RegistrationAuthority,
    ReplyTo,
    ScepError,
)

MAX_MESSAGE: Final = 64 * 1024  # a pkiMessage with a CSR and a certificate or two is 3-6 kB
DEFAULT_CLOCK_SKEW: Final = dt.timedelta(hours=24)  # a new device's clock may be off; 1970 is not "off"
_NONCE_SIZES: Final = range(8, 65)  # RFC 8894 says 16 octets; some clients send other lengths
_MAX_TRANSACTION_ID: Final = 128  # a hash of the key in hex or base64 (40-64 characters) in practice

Content = CertificationRequest | IssuerAndSubject | IssuerAndSerial


@dataclass(frozen=True)
class PkiRequest:
    """A verified, decrypted request. `signer` is the certificate that signed it: a new device's self-signed
    certificate (PKCSReq, and the polls after it), or the current certificate for a RenewalReq. `reply` is what a
    CertRep to it needs; its cipher is the strongest of the request's own and those the CSR announces."""

    message_type: MessageType
    transaction_id: str
    sender_nonce: bytes
    signer: x509.Certificate
    signing_time: dt.datetime | None
    content: Content
    reply: ReplyTo


def load_pki_message(
    der: bytes,
    ra: RegistrationAuthority,
    *,
    now: dt.datetime,
    max_clock_skew: dt.timedelta = DEFAULT_CLOCK_SKEW,
) -> PkiRequest:
    if len(der) > MAX_MESSAGE:
        raise ScepError(FailInfo.BAD_REQUEST, f"a pkiMessage is at most {MAX_MESSAGE} bytes")
    message = load_signed_message(der)
    transaction_id = text_of(_required(message, str(TRANSACTION_ID), "transactionID"), "transactionID")
    sender_nonce = octets_of(_required(message, str(SENDER_NONCE), "senderNonce"), "senderNonce")
    if not 0 < len(transaction_id) <= _MAX_TRANSACTION_ID or not transaction_id.isprintable():
        raise ScepError(
            FailInfo.BAD_REQUEST, f"the transactionID must be 1 to {_MAX_TRANSACTION_ID} printable characters"
        )
    if len(sender_nonce) not in _NONCE_SIZES:
        raise ScepError(FailInfo.BAD_REQUEST, "the senderNonce must be 8 to 64 octets")
    reply = ReplyTo(transaction_id, sender_nonce, message.signer, message.digest or Digest.SHA256, None)
    try:
        return _read(message, reply, ra, now, max_clock_skew)
    except ScepError as error:
        raise error.answering(reply) from None


def check_renewal_signer(
    signer: x509.Certificate, issuers: list[x509.Certificate], *, now: dt.datetime
) -> x509.Certificate:
    """The pure half of a RenewalReq's check: its signer was issued by one of `issuers` (this CA, a rotated-out
    one) and is within its validity. Returns that issuer; the front door then checks the serial is ours in the
    database and not revoked. badCertId when no issuer signed it, badTime when it is not valid now."""
    for issuer in issuers:
        if signer.issuer != issuer.subject:
            continue
        try:
            signer.verify_directly_issued_by(issuer)
        except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
            continue
        if not signer.not_valid_before_utc <= now <= signer.not_valid_after_utc:
            raise ScepError(FailInfo.BAD_TIME, "the certificate that signed the RenewalReq is not valid now")
        return issuer
    raise ScepError(FailInfo.BAD_CERT_ID, "the RenewalReq is not signed by a certificate of this CA")


def _read(
    message: SignedMessage, reply: ReplyTo, ra: RegistrationAuthority, now: dt.datetime, skew: dt.timedelta
) -> PkiRequest:
    verify_signed_message(message)
    message_type = _message_type(text_of(_required(message, str(MESSAGE_TYPE), "messageType"), "messageType"))
    signing_time = None
    if (value := message.attributes.get(str(SIGNING_TIME))) is not None:
        signing_time = time_of(value, "signingTime")
        if abs(signing_time - now) > skew:
            raise ScepError(FailInfo.BAD_TIME, "the signingTime is too far from the server's clock")
    if not isinstance(message.signer.public_key(), rsa.RSAPublicKey):
        raise ScepError(FailInfo.BAD_ALG, "a SCEP requester signs with an RSA key (the answer is encrypted to it)")
    if not message.content:
        raise ScepError(FailInfo.BAD_REQUEST, "the pkiMessage has no pkcsPKIEnvelope")
    opened = open_envelope(message.content, ra.certificate, ra.key)
    content: Content
    cipher = opened.cipher
    if message_type in (MessageType.PKCS_REQ, MessageType.RENEWAL_REQ):
        content = load_certification_request(opened.content)
        cipher = max((cipher, *content.announced_ciphers), key=lambda known: known.strength)  # never weaker
    elif message_type is MessageType.CERT_POLL:
        content = load_issuer_and_subject(opened.content)
    else:
        content = load_issuer_and_serial(opened.content)
    return PkiRequest(
        message_type=message_type,
        transaction_id=reply.transaction_id,
        sender_nonce=reply.sender_nonce,
        signer=message.signer,
        signing_time=signing_time,
        content=content,
        reply=replace(reply, cipher=cipher),
    )


def _required(message: SignedMessage, oid: str, name: str) -> bytes:
    value = message.attributes.get(oid)
    if value is None:
        raise ScepError(FailInfo.BAD_REQUEST, f"the pkiMessage has no {name}")
    return value


def _message_type(text: str) -> MessageType:
    try:
        if not (text.isascii() and text.isdigit() and len(text) <= 3):
            raise ValueError(text)
        value = MessageType(int(text))
    except ValueError:
        raise ScepError(FailInfo.BAD_REQUEST, f"unknown messageType {text[:16]!r}") from None
    if value not in REQUEST_TYPES:
        raise ScepError(FailInfo.BAD_REQUEST, f"messageType {value.name} is not a request")
    return value
