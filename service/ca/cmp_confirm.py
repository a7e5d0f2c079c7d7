"""Confirmation (RFC 4210 5.3.18, RFC 9483 4.1.1): the certConf a client sends for the certificate in our ip, cp or
kup when implicit confirmation was not granted, and what the caller keeps in between (`PendingConfirmation`).

    pending = PendingConfirmation(tid, prepared.sender_nonce, request.cert_req_id, certificate_der)  # kept
    confirmation = check_confirmation(certconf_message, pending)   # then answer pkiConf
    if not confirmation.accepted: ...                              # the client refused it: revoke it
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography import x509

from service.ca.cmp_der import OCTET_STRING, SEQUENCE, AlgorithmId, content, explicit, fields, integer
from service.ca.cmp_failures import FailInfo, PKIStatus
from service.ca.cmp_message import CmpMessage


@dataclass(frozen=True)
class CertConfirmation:
    cert_hash: bytes
    cert_req_id: int
    accepted: bool  # False: the client rejected the certificate (statusInfo rejection)
    hash_algorithm: str | None = None  # RFC 9480's hashAlg, when given


def read_cert_confirmation(message: CmpMessage) -> CertConfirmation:
    """certConf with exactly one CertStatus (RFC 9483 4.1.1)."""
    if message.body_type != "certConf":
        raise message.rejection(FailInfo.badRequest, f"a {message.body_type} is not a certConf")
    try:
        statuses = [fields(item) for _, item in fields(message.body)]
    except ValueError as exc:
        raise message.rejection(FailInfo.badDataFormat, f"the certConf does not read ({exc})") from None
    if len(statuses) != 1:
        raise message.rejection(FailInfo.badRequest, "a certConf confirms exactly one certificate")
    try:
        return _cert_status(statuses[0])
    except (ValueError, UnicodeDecodeError) as exc:
        raise message.rejection(FailInfo.badDataFormat, f"the certConf does not read ({exc})") from None


def _cert_status(parts: list[tuple[int, bytes]]) -> CertConfirmation:
    """CertStatus ::= SEQUENCE { certHash OCTET STRING, certReqId INTEGER, statusInfo PKIStatusInfo OPTIONAL,
    hashAlg [0] AlgorithmIdentifier OPTIONAL }."""
    if len(parts) < 2:
        raise ValueError("CertStatus is SEQUENCE { certHash, certReqId, statusInfo, hashAlg }")
    (_, digest), (_, number), *rest = parts
    accepted, hash_algorithm = True, None
    if rest and rest[0][0] == SEQUENCE:
        status_info = fields(rest.pop(0)[1])
        if not status_info:
            raise ValueError("PKIStatusInfo starts with its status")
        accepted = integer(status_info[0][1]) in (PKIStatus.accepted, PKIStatus.grantedWithMods)
    if rest and rest[0][0] == 0xA0:
        hash_algorithm = AlgorithmId.read(explicit(rest.pop(0)[1], 0xA0)).oid
    if rest:
        raise ValueError("unexpected fields in CertStatus")
    return CertConfirmation(content(digest, OCTET_STRING), integer(number), accepted, hash_algorithm)


def cert_hash(certificate: x509.Certificate, der: bytes, hash_algorithm: str | None) -> bytes:
    """certHash: by hashAlg when given (RFC 9480), else by the certificate's signature hash; SHA-512 for EdDSA."""
    name = "sha512"
    if hash_algorithm is not None:
        names = {"2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384"}
        name = names.get(hash_algorithm, "sha512" if hash_algorithm == "2.16.840.1.101.3.4.2.3" else "")
        if not name:
            raise ValueError(f"hashAlg {hash_algorithm} is not supported")
    elif certificate.signature_hash_algorithm is not None:
        name = certificate.signature_hash_algorithm.name
    return hashlib.new(name, der).digest()


@dataclass(frozen=True)
class PendingConfirmation:
    """What the caller keeps between an ip/cp/kup sent without implicit confirmation and its certConf."""

    transaction_id: bytes
    sender_nonce: bytes  # the senderNonce of our ip/cp/kup: the certConf's recipNonce must be it
    cert_req_id: int
    certificate: bytes  # the issued certificate's DER


def check_confirmation(message: CmpMessage, pending: PendingConfirmation) -> CertConfirmation:
    """The certConf answers `pending`: same transaction, recipNonce our last senderNonce, certReqId and certHash
    of the certificate we sent. CmpError: badRecipientNonce, badCertId. (`accepted` False: the client refused
    the certificate; the caller revokes it and still answers pkiConf.)"""
    if message.header.transaction_id != pending.transaction_id:
        raise message.rejection(FailInfo.badRequest, "the certConf belongs to another transaction")
    if message.header.recip_nonce is None or not hmac.compare_digest(message.header.recip_nonce, pending.sender_nonce):
        raise message.rejection(FailInfo.badRecipientNonce, "the recipNonce is not the senderNonce of our response")
    confirmation = read_cert_confirmation(message)
    if confirmation.cert_req_id != pending.cert_req_id:
        raise message.rejection(FailInfo.badCertId, f"certReqId {confirmation.cert_req_id} was not in our response")
    certificate = x509.load_der_x509_certificate(pending.certificate)
    try:
        expected = cert_hash(certificate, pending.certificate, confirmation.hash_algorithm)
    except ValueError as exc:
        raise message.rejection(FailInfo.badAlg, str(exc)) from None
    if not hmac.compare_digest(expected, confirmation.cert_hash):
        raise message.rejection(FailInfo.badCertId, "the certHash is not the hash of the certificate we issued")
    return confirmation
