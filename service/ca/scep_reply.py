"""CertRep (RFC 8894 §3.3.2): the answer to every request, signed by the RA's RSA key.

SUCCESS carries a degenerate SignedData of the certificate (or a CRL) enveloped to the requester's key;
PENDING and FAILURE carry nothing but their signed attributes, and an empty content: RFC 8894 leaves the content
out, but OpenSSL's PKCS7_verify (certmonger) then fails with "PKCS7 routines::no content", and an empty OCTET
STRING is what micromdm's server sends too. Every CertRep echoes the transactionID, puts the
request's senderNonce as recipientNonce, and has a fresh senderNonce of its own. The digest is the request's own
(`ReplyTo.digest`), the cipher the strongest of the request's and what it announced (`ReplyTo.cipher`).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Final

from cryptography import x509

from service.ca import scep_der as der
from service.ca.scep_asn1 import (
    FAIL_INFO,
    FAIL_INFO_TEXT,
    MESSAGE_TYPE,
    PKI_STATUS,
    RECIPIENT_NONCE,
    SENDER_NONCE,
    TRANSACTION_ID,
)
from service.ca.scep_caps import build_degenerate_pkcs7
from service.ca.scep_envelope import seal_envelope
from service.ca.scep_signed import build_signed_message
from service.ca.scep_types import FailInfo, MessageType, PkiStatus, RegistrationAuthority, ReplyTo

NONCE_SIZE: Final = 16
_MAX_FAIL_TEXT: Final = 200


def build_cert_rep_success(
    reply: ReplyTo,
    ra: RegistrationAuthority,
    *,
    now: dt.datetime,
    certificate: x509.Certificate | None = None,
    crl: x509.CertificateRevocationList | None = None,
    sender_nonce: bytes | None = None,
) -> bytes:
    """SUCCESS with the issued `certificate` (PKCSReq, RenewalReq, CertPoll, GetCert) or, for GetCRL, `crl`,
    enveloped to the key of the certificate that signed the request.

    The certificate alone, no chain: a SET OF is sorted in DER, and micromdm's scepclient keeps the first
    certificate it finds, which could then be the CA's (clients have the chain from GetCACert)."""
    if (certificate is None) == (crl is None):
        raise ValueError("a CertRep SUCCESS carries a certificate or a CRL")
    if reply.cipher is None:
        raise ValueError("a CertRep SUCCESS answers a request whose envelope was opened")
    content = build_degenerate_pkcs7([certificate] if certificate is not None else [], [crl] if crl is not None else [])
    envelope = seal_envelope(content, reply.signer, reply.cipher)
    return _cert_rep(reply, ra, PkiStatus.SUCCESS, envelope, [], now=now, sender_nonce=sender_nonce)


def build_cert_rep_pending(
    reply: ReplyTo, ra: RegistrationAuthority, *, now: dt.datetime, sender_nonce: bytes | None = None
) -> bytes:
    """PENDING: the request waits for approval; the client polls with CertPoll (or, micromdm's scepclient, by
    sending its PKCSReq again with the same transactionID)."""
    return _cert_rep(reply, ra, PkiStatus.PENDING, b"", [], now=now, sender_nonce=sender_nonce)


def build_cert_rep_failure(
    reply: ReplyTo,
    ra: RegistrationAuthority,
    fail_info: FailInfo,
    *,
    now: dt.datetime,
    text: str | None = None,
    sender_nonce: bytes | None = None,
) -> bytes:
    """FAILURE with `fail_info`, and `text` as RFC 8894's failInfoText when given (shown by newer clients; keep
    it free of secrets and short)."""
    extra = [der.attribute(str(FAIL_INFO), der.text(str(int(fail_info))))]
    if text:
        extra.append(der.attribute(str(FAIL_INFO_TEXT), der.utf8(text[:_MAX_FAIL_TEXT])))
    return _cert_rep(reply, ra, PkiStatus.FAILURE, b"", extra, now=now, sender_nonce=sender_nonce)


def _cert_rep(
    reply: ReplyTo,
    ra: RegistrationAuthority,
    status: PkiStatus,
    envelope: bytes,
    extra: list[bytes],
    *,
    now: dt.datetime,
    sender_nonce: bytes | None,
) -> bytes:
    attributes = [
        der.attribute(str(MESSAGE_TYPE), der.text(str(int(MessageType.CERT_REP)))),
        der.attribute(str(PKI_STATUS), der.text(str(int(status)))),
        der.attribute(str(TRANSACTION_ID), der.text(reply.transaction_id)),
        der.attribute(str(RECIPIENT_NONCE), der.octets(reply.sender_nonce)),
        der.attribute(str(SENDER_NONCE), der.octets(sender_nonce or os.urandom(NONCE_SIZE))),
        *extra,
    ]
    return build_signed_message(
        envelope, attributes, certificate=ra.certificate, key=ra.key, digest=reply.digest, now=now
    )
