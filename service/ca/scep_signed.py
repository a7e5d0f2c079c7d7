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

from service.ca import scep_der as der
from service.ca.der import elements
from service.ca.scep_asn1 import (
    CONTENT_TYPE,
    ID_DATA,
    ID_SIGNED_DATA,
    MESSAGE_DIGEST,
    RSA_ENCRYPTION,
    SIGNED_CONTENT,
    SIGNING_TIME,
    decode,
    dotted,
    is_issuer_and_serial_of,
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
    attributes: Mapping[str, bytes]  # attribute OID (dotted) -> the DER of its one value
    signed_attributes: tuple[bytes, ...]  # each Attribute's DER as received, in the order received
    signature: bytes


def load_signed_message(data: bytes) -> SignedMessage:
    """The structure of a SignedData pkiMessage; ScepError(badRequest) when it is not one."""
    content_info = decode(data, SIGNED_CONTENT, "pkiMessage (a CMS SignedData)")
    if content_info["contentType"] != ID_SIGNED_DATA:
        raise ScepError(FailInfo.BAD_REQUEST, "the pkiMessage is not a CMS SignedData")
    signed = content_info["content"]
    if len(signed["signerInfos"]) != 1:
        raise ScepError(FailInfo.BAD_REQUEST, "a pkiMessage has exactly one signer")
    signer_info = signed["signerInfos"][0]
    certificates = _certificates(signed)
    signer = _signer_certificate(bytes(signer_info["sid"]), certificates)
    if not signer_info["signedAttrs"].isValue or not len(signer_info["signedAttrs"]):
        raise ScepError(FailInfo.BAD_REQUEST, "the pkiMessage has no signed attributes")
    items = tuple(bytes(item) for item in signer_info["signedAttrs"])
    attributes: dict[str, bytes] = {}
    for item in items:
        oid, value = _attribute(item)
        if oid in attributes:
            raise ScepError(FailInfo.BAD_REQUEST, f"the signed attribute {oid} appears twice")
        attributes[oid] = value
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
        signed_attributes=items,
        signature=bytes(signer_info["signature"]),
    )


def verify_signed_message(message: SignedMessage) -> Digest:
    """Checks contentType and messageDigest against the content and the signature against the signer's key;
    returns the digest the signer used."""
    digest = message.digest
    if digest is None:
        raise ScepError(FailInfo.BAD_ALG, f"digest algorithm {message.digest_oid} is not supported")
    content_type = message.attributes.get(str(CONTENT_TYPE))
    if content_type is None or bytes(content_type) != der.oid(message.content_type):
        raise ScepError(FailInfo.BAD_MESSAGE_CHECK, "the signed contentType does not match the content")
    message_digest = message.attributes.get(str(MESSAGE_DIGEST))
    expected = hashlib.new(digest.algorithm().name, message.content).digest()
    if message_digest is None or bytes(message_digest) != der.octets(expected):
        raise ScepError(FailInfo.BAD_MESSAGE_CHECK, "the messageDigest does not match the content")
    check = _signature_check(message.signature_oid, digest, message.signer.public_key())
    received = message.signed_attributes
    for candidate in (der.tlv_set(b"".join(received)), der.set_of(*received)):  # as sent, then in DER order
        if check(message.signature, candidate):
            return digest
    raise ScepError(FailInfo.BAD_MESSAGE_CHECK, "the pkiMessage's signature does not verify")


def build_signed_message(
    content: bytes | None,
    attributes: Sequence[bytes],
    *,
    certificate: x509.Certificate,
    key: rsa.RSAPrivateKey,
    digest: Digest,
    now: dt.datetime,
) -> bytes:
    """A SignedData (in its ContentInfo) of `content` (absent when None) by `key`, whose `certificate` it carries.
    `attributes` are DER Attributes (`scep_der.attribute`); contentType, messageDigest and signingTime are added.
    The SignerInfo names its algorithm rsaEncryption, as strongSwan 5.9.8 demands ("only RSA digest encryption
    supported"); the digest algorithms have no parameters (RFC 5754)."""
    body = content or b""
    signed_attributes = der.set_of(
        der.attribute(str(CONTENT_TYPE), der.oid(str(ID_DATA))),
        der.attribute(str(MESSAGE_DIGEST), der.octets(hashlib.new(digest.algorithm().name, body).digest())),
        der.attribute(str(SIGNING_TIME), der.time(now)),
        *attributes,
    )  # the DER SET OF is what is signed; the SignerInfo carries the same bytes tagged [0] IMPLICIT
    signature = key.sign(signed_attributes, padding.PKCS1v15(), digest.algorithm())
    digest_algorithm = der.algorithm(digest.oid)
    signer_info = der.sequence(
        der.integer(1),
        der.issuer_and_serial(certificate),
        digest_algorithm,
        b"\xa0" + signed_attributes[1:],
        der.algorithm(str(RSA_ENCRYPTION), der.null()),
        der.octets(signature),
    )
    data = der.oid(str(ID_DATA))
    encapsulated = (
        der.sequence(data, der.context(0, der.octets(content))) if content is not None else der.sequence(data)
    )
    signed = der.sequence(
        der.integer(1),
        der.set_of(digest_algorithm),
        encapsulated,
        der.context(0, certificate.public_bytes(Encoding.DER)),
        der.set_of(signer_info),
    )
    return der.content_info(str(ID_SIGNED_DATA), signed)


def _attribute(item: bytes) -> tuple[str, bytes]:
    """Attribute ::= SEQUENCE { attrType OID, attrValues SET OF ANY }: (dotted OID, the DER of its one value).
    Signed attributes are DER (RFC 5652 §5.3), so they are walked by hand; pyasn1 reads any that is not."""
    try:
        ((tag, _, start, end),) = elements(item, 0, len(item))
        (oid_tag, oid_at, _, oid_end), (set_tag, _, values, values_end) = elements(item, start, end)
        ((_, value_at, _, value_end),) = elements(item, values, values_end)
        if (tag, oid_tag, set_tag) == (der.SEQUENCE, 0x06, der.SET):
            return dotted(item[oid_at:oid_end]), item[value_at:value_end]
    except (ValueError, IndexError):
        pass
    parsed = decode(item, rfc5652.Attribute(), "signed attribute")
    if len(parsed["attrValues"]) != 1:
        raise ScepError(FailInfo.BAD_REQUEST, f"the signed attribute {parsed['attrType']} must have one value")
    return str(parsed["attrType"]), bytes(parsed["attrValues"][0])


def _certificates(signed: univ.Sequence) -> tuple[x509.Certificate, ...]:
    if not signed["certificates"].isValue:
        return ()
    if len(signed["certificates"]) > MAX_CERTIFICATES:
        raise ScepError(FailInfo.BAD_REQUEST, f"a pkiMessage carries at most {MAX_CERTIFICATES} certificates")
    certificates = []
    for item in signed["certificates"]:
        data = bytes(item)
        if not _has_positive_serial(data):
            continue  # cryptography warns now and will refuse later: refuse it today (the RFC 5280 rule)
        try:
            certificate = x509.load_der_x509_certificate(data)
            # cryptography reads the parts lazily: read now what the checks after this use, so garbage in a key
            # or a name is this certificate's refusal here, not an exception later
            certificate.public_key()
            _ = certificate.issuer, certificate.subject, certificate.serial_number
            _ = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        except (ValueError, UnsupportedAlgorithm):
            continue  # an attribute certificate or garbage: not the signer, which must parse
        certificates.append(certificate)
    return tuple(certificates)


def _has_positive_serial(data: bytes) -> bool:
    """Certificate ::= SEQUENCE { TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, INTEGER serial, ...} ...}"""
    try:
        ((_, _, start, end),) = elements(data, 0, len(data))
        tbs_tag, _, tbs_start, tbs_end = next(elements(data, start, end))
        fields = elements(data, tbs_start, tbs_end)
        tag, _, value, value_end = next(fields)
        if tag == 0xA0:
            tag, _, value, value_end = next(fields)
    except (ValueError, IndexError, StopIteration):
        return False
    serial = data[value:value_end]
    return tbs_tag == der.SEQUENCE and tag == 0x02 and bool(serial) and serial[0] < 0x80 and any(serial)


def _signer_certificate(sid: bytes, certificates: Sequence[x509.Certificate]) -> x509.Certificate:
    """The certificate the SignerInfo names: by its bytes first (a signer copies them from its certificate), by
    the names' meaning when the encodings differ."""
    for certificate in certificates:
        if sid == der.issuer_and_serial(certificate):
            return certificate
        key_id = _key_identifier(certificate)
        if key_id is not None and sid == der.primitive(0x80, key_id):
            return certificate
    if sid[:1] == bytes((der.SEQUENCE,)):
        item = decode(sid, rfc5652.IssuerAndSerialNumber(), "SignerInfo's sid")
        for certificate in certificates:
            if is_issuer_and_serial_of(item, certificate):
                return certificate
    raise ScepError(FailInfo.BAD_REQUEST, "the pkiMessage does not carry its signer's certificate")


def _key_identifier(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, ValueError):
        return None


class _Check:
    """Whether a signature verifies, by the signer's key and the digest."""

    def __init__(self, public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, digest: Digest) -> None:
        self.public_key = public_key
        self.digest = digest

    def __call__(self, signature: bytes, data: bytes) -> bool:
        try:
            if isinstance(self.public_key, rsa.RSAPublicKey):
                self.public_key.verify(signature, data, padding.PKCS1v15(), self.digest.algorithm())
            else:
                self.public_key.verify(signature, data, ec.ECDSA(self.digest.algorithm()))
        except (InvalidSignature, ValueError):
            return False
        return True


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
