"""Checking a CMP message's protection (RFC 4210 5.1.3, RFC 9483 3.2): a MAC with the secret the caller found
by the senderKID, or a signature by a certificate of this CA that the message carries first in extraCerts.

Every refusal is an `error`-answer CmpError (the message as a whole is refused): wrongIntegrity (not protected the
way asked for), badMessageCheck (does not verify, or the sender and senderKID do not name the signer),
signerNotTrusted (the signer is not from this CA, expired, or may not sign), badAlg. Whether the signer is revoked
is the caller's question (it has the database): certRevoked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from service.ca.cmp_failures import CmpError, FailInfo
from service.ca.cmp_message import CmpMessage
from service.ca.cmp_protection import MacAlgorithm, load_mac_algorithm, verify_mac, verify_signature


def mac_algorithm(message: CmpMessage) -> MacAlgorithm:
    """The message's MAC algorithm (read by load_pki_message); CmpError(wrongIntegrity) when it has none."""
    if message.protection_kind != "mac" or message.protection_algorithm is None:
        raise message.error(FailInfo.wrongIntegrity, "the message is not MAC-protected")
    return message.mac_algorithm or load_mac_algorithm(message.protection_algorithm)


def verify_mac_protection(message: CmpMessage, secret: bytes) -> None:
    """CmpError(wrongIntegrity) when not MAC-protected, (badMessageCheck) when the MAC is not `secret`'s."""
    algorithm = mac_algorithm(message)
    assert message.protection is not None  # protection_kind says so
    try:
        verify_mac(algorithm, secret, message.protected_part, message.protection)
    except CmpError as exc:
        raise message.error(exc.fail_info, exc.detail) from None


def verify_signature_protection(
    message: CmpMessage, issuers: Sequence[x509.Certificate], *, now: dt.datetime
) -> x509.Certificate:
    """The signer (the first extraCerts certificate) after checking that it names the header's sender (and
    senderKID, when given), was issued by one of `issuers`, is valid at `now` and may sign (digitalSignature), and
    that its signature verifies. CmpError: wrongIntegrity, badMessageCheck, signerNotTrusted, badAlg."""
    if message.protection_kind != "signature" or message.protection_algorithm is None or message.protection is None:
        raise message.error(FailInfo.wrongIntegrity, "the message is not signed")
    if not message.extra_certs:
        raise message.error(FailInfo.signerNotTrusted, "extraCerts must start with the signer's certificate")
    signer = message.extra_certs[0]
    if message.header.sender_name != signer.subject:
        raise message.error(FailInfo.badMessageCheck, "the sender is not the subject of the signer's certificate")
    if message.header.sender_kid is not None and message.header.sender_kid != _key_id(signer):
        raise message.error(FailInfo.badMessageCheck, "senderKID is not the signer's subject key identifier")
    if not any(_issued_by(signer, issuer) for issuer in issuers):
        raise message.error(FailInfo.signerNotTrusted, "the signer's certificate is not from this CA")
    if not signer.not_valid_before_utc <= now <= signer.not_valid_after_utc:
        raise message.error(FailInfo.signerNotTrusted, "the signer's certificate is expired or not yet valid")
    if not _may_sign(signer):
        raise message.error(FailInfo.signerNotTrusted, "the signer's certificate does not allow digitalSignature")
    try:
        public_key = signer.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise message.error(FailInfo.signerNotTrusted, "the signer's public key is not one this CA knows") from None
    try:
        verify_signature(public_key, message.protection_algorithm, message.protected_part, message.protection)
    except CmpError as exc:
        raise message.error(exc.fail_info, exc.detail) from None
    return signer


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _key_id(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _may_sign(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    except x509.ExtensionNotFound:
        return True
