"""The signed layer of a pkiMessage (RFC 8894 §3.2.1): CMS SignedData with one signer and signed attributes.

`load_signed_message` reads the structure (anything wrong is badRequest), `verify_signed_message` checks it
(contentType and messageDigest against the content, then the signature with the certificate the message carries:
badMessageCheck or badAlg), `build_signed_message` signs a response with the RA's RSA key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from pyasn1.type import univ
from pyasn1_modules import rfc5652

from service.ca.der import elements, tlv
from service.ca.scep_asn1 import (
    CONTENT_TYPE,
    ID_DATA,
    ID_SIGNED_DATA,
    MESSAGE_DIGEST,
    RSA_ENCRYPTION,
    SIGNED_DATA,
    SIGNING_TIME,
    algorithm_identifier,
    attribute,
    decode,
    encode,
    is_issuer_and_serial_of,
    issuer_and_serial,
    signing_time,
)
from service.ca.scep_types import Digest, FailInfo, ScepError

MAX_CERTIFICATES: Final = 8  # a pkiMessage carries its signer's certificate, perhaps a chain; not a bag of them
_ECDSA_KEY: Final = "1.2.840.10045.2.1"  # id-ecPublicKey, which some signers put where ecdsa-with-SHAn belongs


@dataclass(frozen=True)
class SignedMessage:
    """A parsed, not yet verified, SignedData: its content, its signer and the signed attributes (each the DER of
    its single value, by attribute OID in dotted form)."""

    content: bytes
    content_type: str
    signer: x509.Certificate
    certificates: tuple[x509.Certificate, ...]
    digest: Digest | None  # None: the signer used a digest we do not support (badAlg once verified)
    digest_oid: str
    signature_oid: str
    attributes: Mapping[str, univ.Any]
    signed_attributes: tuple[bytes, ...]  # each Attribute's DER, in the order received (for the signature)
    signature: bytes


def load_signed_message(der: bytes) -> SignedMessage:
    """The structure of a SignedData pkiMessage; ScepError(badRequest) when it is not one."""
    content_info = decode(der, rfc5652.ContentInfo(), "pkiMessage")
    if content_info["contentType"] != ID_SIGNED_DATA:
        raise ScepError(FailInfo.BAD_REQUEST, "the pkiMessage is not a CMS SignedData")
    signed = decode(bytes(content_info["content"]), SIGNED_DATA, "SignedData")
    if len(signed["signerInfos"]) != 1:
        raise ScepError(FailInfo.BAD_REQUEST, "a pkiMessage has exactly one signer")
    signer_info = signed["signerInfos"][0]
    certificates = _certificates(signed)
    signer = _signer_certificate(signer_info["sid"], certificates)
    if not signer_info["signedAttrs"].isValue or not len(signer_info["signedAttrs"]):
        raise ScepError(FailInfo.BAD_REQUEST, "the pkiMessage has no signed attributes")
    attributes: dict[str, univ.Any] = {}
    for item in signer_info["signedAttrs"]:
        oid = str(item["attrType"])
        if oid in attributes or len(item["attrValues"]) != 1:
            raise ScepError(FailInfo.BAD_REQUEST, f"the signed attribute {oid} must have exactly one value")
        attributes[oid] = item["attrValues"][0]
    encapsulated = signed["encapContentInfo"]
    digest_oid = str(signer_info["digestAlgorithm"]["algorithm"])
    return SignedMessage(
        content=bytes(encapsulated["eContent"]) if encapsulated["eContent"].isValue else b"",
        content_type=str(encapsulated["eContentType"]),
        signer=signer,
        certificates=certificates,
        digest=Digest.from_oid(digest_oid),
        digest_oid=digest_oid,
        signature_oid=str(signer_info["signatureAlgorithm"]["algorithm"]),
        attributes=attributes,
        signed_attributes=tuple(encode(item) for item in signer_info["signedAttrs"]),
        signature=bytes(signer_info["signature"]),
    )


def verify_signed_message(message: SignedMessage) -> Digest:
    """Checks contentType and messageDigest against the content and the signature against the signer's key;
    returns the digest the signer used."""
    digest = message.digest
    if digest is None:
        raise ScepError(FailInfo.BAD_ALG, f"digest algorithm {message.digest_oid} is not supported")
    content_type = message.attributes.get(str(CONTENT_TYPE))
    if content_type is None or str(decode(bytes(content_type), univ.ObjectIdentifier(), "contentType")) != (
        message.content_type
    ):
        raise ScepError(FailInfo.BAD_MESSAGE_CHECK, "the signed contentType does not match the content")
    message_digest = message.attributes.get(str(MESSAGE_DIGEST))
    expected = hashlib.new(digest.algorithm().name, message.content).digest()
    if message_digest is None or bytes(decode(bytes(message_digest), univ.OctetString(), "messageDigest")) != (
        expected
    ):
        raise ScepError(FailInfo.BAD_MESSAGE_CHECK, "the messageDigest does not match the content")
    public_key = message.signer.public_key()
    check = _signature_check(message.signature_oid, digest, public_key)
    received = b"".join(message.signed_attributes)
    candidates = [_set_of(received), _set_of(b"".join(sorted(message.signed_attributes)))]
    for candidate in candidates:  # as received (what was signed), then in DER order (for a signer that sorted)
        try:
            check(message.signature, candidate)
        except (InvalidSignature, ValueError):
            continue
        return digest
    raise ScepError(FailInfo.BAD_MESSAGE_CHECK, "the pkiMessage's signature does not verify")


def build_signed_message(
    content: bytes | None,
    attributes: Sequence[rfc5652.Attribute],
    *,
    certificate: x509.Certificate,
    key: rsa.RSAPrivateKey,
    digest: Digest,
    now: dt.datetime,
) -> bytes:
    """A SignedData (in its ContentInfo) of `content` (absent when None) by `key`, whose `certificate` it carries.
    The SignerInfo names its algorithm rsaEncryption, as strongSwan 5.9.8 demands ("only RSA digest encryption
    supported"); contentType, messageDigest and signingTime are added to `attributes`."""
    body = content or b""
    signed_attributes = rfc5652.SignedAttributes()
    signed_attributes.extend(
        [
            attribute(CONTENT_TYPE, ID_DATA),
            attribute(MESSAGE_DIGEST, univ.OctetString(hashlib.new(digest.algorithm().name, body).digest())),
            attribute(SIGNING_TIME, signing_time(now)),
            *attributes,
        ]
    )
    to_sign = encode(signed_attributes)  # the DER SET OF, sorted, which is what the SignerInfo carries
    signer_info = rfc5652.SignerInfo()
    signer_info["version"] = 1
    signer_info["sid"]["issuerAndSerialNumber"] = issuer_and_serial(certificate)
    algorithm_identifier(signer_info["digestAlgorithm"], digest.oid)
    signer_info["signedAttrs"].extend(list(signed_attributes))
    algorithm_identifier(signer_info["signatureAlgorithm"], RSA_ENCRYPTION, univ.Null(""))
    signer_info["signature"] = key.sign(to_sign, padding.PKCS1v15(), digest.algorithm())

    signed = SIGNED_DATA.clone()
    signed["version"] = 1
    signed["digestAlgorithms"].append(algorithm_identifier(rfc5652.DigestAlgorithmIdentifier(), digest.oid))
    signed["encapContentInfo"]["eContentType"] = ID_DATA
    if content is not None:
        signed["encapContentInfo"]["eContent"] = content
    signed["certificates"].append(univ.Any(certificate.public_bytes(Encoding.DER)))
    signed["signerInfos"].append(signer_info)
    content_info = rfc5652.ContentInfo()
    content_info["contentType"] = ID_SIGNED_DATA
    content_info["content"] = univ.Any(encode(signed))
    return encode(content_info)


def _certificates(signed: univ.Sequence) -> tuple[x509.Certificate, ...]:
    if not signed["certificates"].isValue:
        return ()
    if len(signed["certificates"]) > MAX_CERTIFICATES:
        raise ScepError(FailInfo.BAD_REQUEST, f"a pkiMessage carries at most {MAX_CERTIFICATES} certificates")
    certificates = []
    for item in signed["certificates"]:
        der = bytes(item)
        if not _has_positive_serial(der):
            continue  # cryptography warns now and will refuse later: refuse it today (the RFC 5280 rule)
        try:
            certificate = x509.load_der_x509_certificate(der)
            # cryptography reads the parts lazily: read now what the checks after this use, so garbage in a key
            # or a name is this certificate's refusal here, not an exception later
            certificate.public_key()
            _ = certificate.issuer, certificate.subject, certificate.serial_number
            _ = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        except (ValueError, UnsupportedAlgorithm):
            continue  # an attribute certificate or garbage: not the signer, which must parse
        certificates.append(certificate)
    return tuple(certificates)


def _has_positive_serial(der: bytes) -> bool:
    """Certificate ::= SEQUENCE { TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, INTEGER serial, ...} ...}"""
    try:
        ((tag, _, start, end),) = elements(der, 0, len(der))
        tbs_tag, _, tbs_start, tbs_end = next(elements(der, start, end))
        fields = elements(der, tbs_start, tbs_end)
        tag, _, value, value_end = next(fields)
        if tag == 0xA0:
            tag, _, value, value_end = next(fields)
    except (ValueError, IndexError, StopIteration):
        return False
    serial = der[value:value_end]
    return tbs_tag == 0x30 and tag == 0x02 and bool(serial) and serial[0] < 0x80 and any(serial)


def _signer_certificate(sid: univ.Choice, certificates: Sequence[x509.Certificate]) -> x509.Certificate:
    for certificate in certificates:
        if sid.getName() == "issuerAndSerialNumber":
            if is_issuer_and_serial_of(sid["issuerAndSerialNumber"], certificate):
                return certificate
        elif _key_identifier(certificate) == bytes(sid["subjectKeyIdentifier"]):
            return certificate
    raise ScepError(FailInfo.BAD_REQUEST, "the pkiMessage does not carry its signer's certificate")


def _key_identifier(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, ValueError):
        return None


def _set_of(content: bytes) -> bytes:
    return tlv(0x31, content)  # what a signature over signed attributes covers: their SET OF, not the [0]


class _Check:
    def __init__(self, public_key: object, digest: Digest) -> None:
        self.public_key = public_key
        self.digest = digest

    def __call__(self, signature: bytes, data: bytes) -> None:
        algorithm = self.digest.algorithm()
        if isinstance(self.public_key, rsa.RSAPublicKey):
            self.public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(self.public_key, ec.EllipticCurvePublicKey):
            self.public_key.verify(signature, data, ec.ECDSA(algorithm))
        else:
            raise ScepError(FailInfo.BAD_ALG, "the signer's key type is not supported")


def _signature_check(oid: str, digest: Digest, public_key: object) -> _Check:
    """How to check the signature: the SignerInfo's algorithm must fit the signer's key and, when it names a
    digest (shaNWithRSAEncryption, ecdsa-with-SHAn), the digestAlgorithm."""
    rsa_ok = oid == str(RSA_ENCRYPTION) or oid == digest.rsa_oid
    ecdsa_ok = oid in (_ECDSA_KEY, digest.ecdsa_oid)
    if isinstance(public_key, rsa.RSAPublicKey) and rsa_ok:
        return _Check(public_key, digest)
    if isinstance(public_key, ec.EllipticCurvePublicKey) and ecdsa_ok:
        return _Check(public_key, digest)
    known = {str(RSA_ENCRYPTION), _ECDSA_KEY} | {d.rsa_oid for d in Digest} | {d.ecdsa_oid for d in Digest}
    if oid in known:
        raise ScepError(FailInfo.BAD_MESSAGE_CHECK, "the signature algorithm does not fit the signer's key or digest")
    raise ScepError(FailInfo.BAD_ALG, f"signature algorithm {oid} is not supported")
