"""CMP answers: ip/cp/kup, pkiConf, rp, genp and error (RFC 4210 5.3, RFC 9483 4), protected and addressed.

    body = certification_response(message, asked.cert_req_id, certificate, chain=chain, ca_pubs=roots)
    # ... or refusal_body(error), confirmation(), revocation_response(), cmp_general.general_response(answers)
    answer = build_response(message.header, body, SignedBy(ra_key, ra_certificate, chain), now=now,
                            implicit_confirm=message.header.implicit_confirm and allowed)
    answer.der            # the PKIMessage to send; answer.sender_nonce: keep it for the certConf

The header answers the request's: the same pvno and transactionID, recipNonce = its senderNonce, a fresh
senderNonce (`PreparedResponse.sender_nonce`: the caller keeps it for the certConf), recipient = its sender.
Signed answers name the signer as sender, its subject key identifier as senderKID, and carry it first in extraCerts
followed by `chain` (RFC 9483 3.3: the issuing CAs, self-signed roots left out). MAC answers (`MacWith`) use the
request's MAC algorithm with a fresh salt and the same secret.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyasn1.type import char, univ

from service.ca.cmp_asn1 import (
    CERT_REP_MESSAGE,
    CERT_RESPONSE,
    ERROR_MSG_CONTENT,
    PKI_FAILURE_INFO,
    PKI_STATUS_INFO,
    REV_REP_CONTENT,
    encode,
)
from service.ca.cmp_der import AlgorithmId, integer_der
from service.ca.cmp_failures import CmpError, FailInfo, PKIStatus
from service.ca.cmp_header import CmpHeader
from service.ca.cmp_message import (
    BODY_TYPES,
    PVNO_CMP2000,
    CmpMessage,
    assemble,
    build_header,
    fresh_nonce,
    protected_part,
)
from service.ca.cmp_names import NULL_DN, directory_name
from service.ca.cmp_protection import (
    MacAlgorithm,
    compute_mac,
    mac_algorithm_identifier,
    sign,
    signature_algorithm,
    with_fresh_salt,
)
from service.ca.der import tlv
from service.ca.keys import PrivateKey

_ANSWER: Final = {"ir": "ip", "cr": "cp", "kur": "kup", "p10cr": "cp"}
_ACCEPTED: Final = b"\x30\x03\x02\x01\x00"  # PKIStatusInfo { status accepted }
_DER = serialization.Encoding.DER


@dataclass(frozen=True)
class ResponseBody:
    body_type: str  # "ip", "cp", "kup", "pkiconf", "rp", "genp" or "error"
    content: bytes  # DER of the body's content (inside its [n] tag)
    extra_certs: tuple[x509.Certificate, ...] = ()  # after the signer and its chain (the new certificate's chain)


@dataclass(frozen=True)
class SignedBy:
    """Signature protection by a CMP/RA certificate of this CA (digitalSignature: openssl cmp insists)."""

    key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()  # the certificate's issuing CAs, leaf side first, no self-signed root

    @functools.cached_property
    def extra_certs(self) -> tuple[bytes, ...]:
        """The signer and its chain, DER: the start of every answer's extraCerts (encoded once)."""
        return tuple(c.public_bytes(_DER) for c in (self.certificate, *self.chain))

    @functools.cached_property
    def sender(self) -> bytes:
        """The certificate's subject as the header's sender (a directoryName)."""
        return directory_name(self.certificate.subject)

    @functools.cached_property
    def algorithm(self) -> AlgorithmId:
        return signature_algorithm(self.key)

    @functools.cached_property
    def key_id(self) -> bytes | None:
        try:
            return self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            return None


@dataclass(frozen=True)
class MacWith:
    """MAC protection with the request's shared secret (RFC 4210 5.1.3.1) and its algorithm, a new salt."""

    secret: bytes
    algorithm: MacAlgorithm
    sender: x509.Name  # who answers (this CA's or the RA's name)
    reference: bytes | None = None  # senderKID; None: none


ResponseProtection = SignedBy | MacWith


@dataclass(frozen=True)
class PreparedResponse:
    der: bytes
    sender_nonce: bytes  # ours: a certConf's recipNonce must be this (see cmp_confirm.PendingConfirmation)


def build_response(
    request: CmpHeader | None,
    body: ResponseBody,
    protection: ResponseProtection,
    *,
    now: dt.datetime,
    implicit_confirm: bool = False,
) -> PreparedResponse:
    """The whole PKIMessage answering `request` (None: a request too broken to have a header; the answer then
    carries a new transactionID, as RFC 9483 3.1 wants one in every message)."""
    nonce = fresh_nonce()
    certificates: list[bytes] = []
    if isinstance(protection, SignedBy):
        sender, kid, algorithm = protection.sender, protection.key_id, protection.algorithm
        certificates.extend(protection.extra_certs)
    else:
        sender, kid = directory_name(protection.sender), protection.reference
        mac = with_fresh_salt(protection.algorithm)
        algorithm = mac_algorithm_identifier(mac)
    header = build_header(
        pvno=request.pvno if request is not None else PVNO_CMP2000,
        sender=sender,
        recipient=request.sender if request is not None else NULL_DN,
        now=now,
        protection_algorithm=algorithm,
        sender_kid=kid,
        transaction_id=request.transaction_id if request is not None else fresh_nonce(),
        sender_nonce=nonce,
        recip_nonce=request.sender_nonce if request is not None else None,
        implicit_confirm=implicit_confirm,
    )
    for certificate in body.extra_certs:  # the new certificate's chain, each certificate once (RFC 9483 3.3)
        der = certificate.public_bytes(_DER)
        if der not in certificates:
            certificates.append(der)
    tag = BODY_TYPES.index(body.body_type)
    signed = protected_part(header, tag, body.content)
    if isinstance(protection, SignedBy):
        value = sign(protection.key, signed)
    else:
        value = compute_mac(mac, protection.secret, signed)
    return PreparedResponse(assemble(header, tag, body.content, value, certificates), nonce)


# --- bodies ------------------------------------------------------------------------------------------------------


def status_info(status: PKIStatus, *, fail_info: FailInfo | None = None, text: str | None = None) -> univ.Sequence:
    info = PKI_STATUS_INFO.clone()
    info["status"] = int(status)
    if text:
        info["statusString"].append(char.UTF8String(text[:512]))
    if fail_info is not None:
        info["failInfo"] = PKI_FAILURE_INFO.clone((0,) * int(fail_info) + (1,))
    return info


def certification_response(
    message: CmpMessage,
    cert_req_id: int,
    certificate: x509.Certificate,
    *,
    chain: Sequence[x509.Certificate] = (),
    ca_pubs: Sequence[x509.Certificate] = (),
) -> ResponseBody:
    """ip (for ir), cp (cr, p10cr) or kup (kur) carrying the new certificate; `chain` (its issuing CAs) goes into
    extraCerts, `ca_pubs` (trust anchors: the root, RFC 9483 4.1.1) into caPubs."""
    # CertRepMessage ::= SEQUENCE { caPubs [1] SEQUENCE OF CMPCertificate OPTIONAL, response SEQUENCE OF
    #   CertResponse { certReqId, status PKIStatusInfo { accepted }, certifiedKeyPair { [0] certificate } } },
    # written by hand (test_cmp_der holds it to pyasn1's encoding of the same)
    anchors = tlv(0xA1, tlv(0x30, *(c.public_bytes(_DER) for c in ca_pubs))) if ca_pubs else b""
    certified = tlv(0x30, tlv(0xA0, certificate.public_bytes(_DER)))
    response = tlv(0x30, integer_der(cert_req_id), _ACCEPTED, certified)
    content = tlv(0x30, anchors, tlv(0x30, response))
    return ResponseBody(_ANSWER[message.body_type], content, tuple(chain))


def refusal_body(error: CmpError, *, body_type: str | None = None, cert_req_id: int | None = None) -> ResponseBody:
    """The answer to a refused request: a rejected ip/cp/kup for an enrolment, a rejected rp for an rr
    (RFC 9483 4.1.1 and 4.2), an error message for anything else (a certConf, a genm, unreadable input)."""
    kind = body_type if body_type is not None else error.body_type
    info = status_info(PKIStatus.rejection, fail_info=error.fail_info, text=error.detail)
    if kind in _ANSWER:
        response = CERT_RESPONSE.clone()
        response["certReqId"] = cert_req_id if cert_req_id is not None else (-1 if kind == "p10cr" else 0)
        response["status"] = info
        content = CERT_REP_MESSAGE.clone()
        content["response"].append(response)
        return ResponseBody(_ANSWER[kind], encode(content))
    if kind == "rr":
        return revocation_response(error)
    body = ERROR_MSG_CONTENT.clone()
    body["pKIStatusInfo"] = info
    return ResponseBody("error", encode(body))


def confirmation() -> ResponseBody:
    """pkiConf: the answer to a certConf."""
    return ResponseBody("pkiconf", b"\x05\x00")


def revocation_response(error: CmpError | None = None) -> ResponseBody:
    """rp: accepted, or rejected with the error's failInfo (badCertId, certRevoked, notAuthorized)."""
    content = REV_REP_CONTENT.clone()
    if error is None:
        content["status"].append(status_info(PKIStatus.accepted))
    else:
        content["status"].append(status_info(PKIStatus.rejection, fail_info=error.fail_info, text=error.detail))
    return ResponseBody("rp", encode(content))
