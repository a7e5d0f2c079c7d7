"""OCSP (RFC 6960): reading requests and signing responses. The CA signs its own responses."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509 import ocsp

from service.ca.crl import REASONS
from service.ca.issue import Signer

_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class MalformedOCSPRequestError(ValueError):
    """The bytes are not one OCSP request we can answer; the reply is `malformedRequest`."""


@dataclass(frozen=True)
class OCSPQuestion:
    serial_number: int
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    hash_name: str
    nonce: bytes | None


@dataclass(frozen=True)
class OCSPAnswer:
    status: str  # good | revoked | unknown
    revoked_at: dt.datetime | None = None
    reason: str | None = None


def load_ocsp_request(data: bytes) -> OCSPQuestion:
    try:
        request = ocsp.load_der_ocsp_request(data)
        algorithm = request.hash_algorithm
        question_nonce: bytes | None = None
        for extension in request.extensions:
            if isinstance(extension.value, x509.OCSPNonce):
                question_nonce = extension.value.nonce
        return OCSPQuestion(
            serial_number=request.serial_number,
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            hash_name=algorithm.name,
            nonce=question_nonce,
        )
    except Exception as exc:  # cryptography raises ValueError and friends for garbage, and for multi-cert requests
        raise MalformedOCSPRequestError(str(exc)) from None


def is_for_issuer(question: OCSPQuestion, issuer: x509.Certificate) -> bool:
    """Whether the request names this CA (by the hashes of its name and key)."""
    algorithm = _HASHES.get(question.hash_name)
    if algorithm is None:
        return False
    name_hash = _digest(algorithm(), issuer.subject.public_bytes())
    key_hash = _digest(algorithm(), _public_key_bits(issuer.public_key()))
    return name_hash == question.issuer_name_hash and key_hash == question.issuer_key_hash


def build_ocsp_response(
    signer: Signer,
    issuer: x509.Certificate,
    question: OCSPQuestion,
    answer: OCSPAnswer,
    *,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> bytes:
    status = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED}.get(
        answer.status, ocsp.OCSPCertStatus.UNKNOWN
    )
    reason = REASONS.get(answer.reason or "") if answer.status == "revoked" else None
    if reason == x509.ReasonFlags.unspecified:
        reason = None
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=question.issuer_name_hash,
        issuer_key_hash=question.issuer_key_hash,
        serial_number=question.serial_number,
        algorithm=_HASHES[question.hash_name](),
        cert_status=status,
        this_update=this_update,
        next_update=next_update,
        revocation_time=answer.revoked_at if answer.status == "revoked" else None,
        revocation_reason=reason,
    )
    if question.nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(question.nonce), critical=False)
    return signer.sign_ocsp(builder, issuer).public_bytes(serialization.Encoding.DER)


def build_unsuccessful(status: str) -> bytes:
    """`malformedRequest`, `unauthorized`, `internalError` or `tryLater`, unsigned as RFC 6960 says."""
    codes = {
        "malformedRequest": ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
        "unauthorized": ocsp.OCSPResponseStatus.UNAUTHORIZED,
        "internalError": ocsp.OCSPResponseStatus.INTERNAL_ERROR,
        "tryLater": ocsp.OCSPResponseStatus.TRY_LATER,
    }
    return ocsp.OCSPResponseBuilder.build_unsuccessful(codes[status]).public_bytes(serialization.Encoding.DER)


def responder_key_hash(certificate: x509.Certificate) -> bytes:
    """ResponderID byKey: the SHA-1 of the responder's subjectPublicKey bits (RFC 6960 4.2.1)."""
    return _digest(hashes.SHA1(), _public_key_bits(certificate.public_key()))  # noqa: S303 (an identifier RFC 6960 fixes)


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _public_key_bits(key: CertificatePublicKeyTypes) -> bytes:
    """The contents of subjectPublicKey's BIT STRING, which OCSP's issuerKeyHash covers."""
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raise TypeError(f"unsupported CA key {type(key).__name__}")
