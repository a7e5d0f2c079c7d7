"""What a decrypted pkcsPKIEnvelope holds (RFC 8894 §3.3): a PKCS#10 request (PKCSReq, RenewalReq), an
IssuerAndSubject (CertPoll) or an IssuerAndSerialNumber (GetCert, GetCRL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ObjectIdentifier
from pyasn1.type import char
from pyasn1_modules import rfc5652

from service.ca.csr import CertificateRequest, read_request
from service.ca.scep_asn1 import (
    CERTIFICATION_REQUEST,
    CHALLENGE_PASSWORD,
    ISSUER_AND_SUBJECT,
    REQUEST_INFO,
    SIGNED_REQUEST,
    SMIME_CAPABILITIES,
    SMIME_CAPABILITIES_SPEC,
    decode,
    decode_any,
    encode,
    load_name,
)
from service.ca.scep_types import Cipher, Digest, FailInfo, ScepError
from service.errors import InvalidCSRError

_SMIME_CAPABILITIES = ObjectIdentifier(str(SMIME_CAPABILITIES))
_BY_RSA_OID: Final = {digest.rsa_oid: digest for digest in Digest}
_BY_ECDSA_OID: Final = {digest.ecdsa_oid: digest for digest in Digest}
_ED25519: Final = "1.3.101.112"
_MAX_CHALLENGE: Final = 255  # PKCS#9: DirectoryString (SIZE (1..255))


@dataclass(frozen=True)
class CertificationRequest:
    """PKCSReq's and RenewalReq's content: a PKCS#10 request whose self-signature verified, the challengePassword
    it carries (None when it has none), and the ciphers it announces (SMIMECapabilities, attribute or extension).

    `der` is the request as received. `csr` is cryptography's reading of it, re-encoded in DER first when the
    client's encoding is not DER (strongSwan 5.9.8 puts extensionRequest before challengePassword, a SET OF out
    of DER order that cryptography refuses): its signature was checked on the bytes received, so do not call
    `load_csr` (or anything that verifies `csr` again) on it; take `read()`, what it asks for."""

    csr: x509.CertificateSigningRequest
    der: bytes
    challenge_password: str | None
    announced_ciphers: tuple[Cipher, ...]

    def read(self) -> CertificateRequest:
        """Subject, CN, SANs and key, as `POST /csr` reads a CSR; ScepError(badRequest) when they do not parse."""
        try:
            return read_request(self.csr)
        except InvalidCSRError as error:
            raise ScepError(FailInfo.BAD_REQUEST, error.detail) from None

    def __repr__(self) -> str:  # the challenge is a secret: never in a log line or a traceback
        return f"CertificationRequest(subject={self.csr.subject.rfc4514_string()!r}, challenge=<hidden>)"


@dataclass(frozen=True)
class IssuerAndSubject:
    """CertPoll's content: the CA's name (some clients put the RA's here) and the subject requested."""

    issuer: x509.Name
    subject: x509.Name


@dataclass(frozen=True)
class IssuerAndSerial:
    """GetCert's and GetCRL's content: which certificate (GetCRL: the CRL of that certificate's issuer)."""

    issuer: x509.Name
    serial_number: int


def load_certification_request(der: bytes) -> CertificationRequest:
    csr = _verified_csr(der)
    challenge, announced = _read_attributes(csr) or _decode_attributes(der)
    try:
        extension = csr.extensions.get_extension_for_oid(_SMIME_CAPABILITIES).value
    except x509.ExtensionNotFound:
        pass
    except ValueError:
        raise ScepError(FailInfo.BAD_REQUEST, "the PKCS#10 request's extensions do not parse") from None
    else:
        if isinstance(extension, x509.UnrecognizedExtension):
            announced.extend(_ciphers_of(extension.value))
    return CertificationRequest(
        csr=csr, der=der, challenge_password=challenge, announced_ciphers=tuple(dict.fromkeys(announced))
    )


def _read_attributes(csr: x509.CertificateSigningRequest) -> tuple[str | None, list[Cipher]] | None:
    """challengePassword and SMIMECapabilities as cryptography reads them: a string attribute's content, a
    structured one's DER. None (read them with pyasn1) when cryptography cannot, or when the challenge is not in
    a UTF-8-compatible string type (a BMPString's NULs)."""
    try:
        attributes = {attribute.oid.dotted_string: attribute.value for attribute in csr.attributes}
    except ValueError:  # several values in one attribute, or a value cryptography does not read
        return None
    challenge = attributes.get(str(CHALLENGE_PASSWORD))
    text = None
    if challenge is not None:
        try:
            text = challenge.decode()
        except UnicodeDecodeError:
            return None
        if "\x00" in text:
            return None
        if not 0 < len(text) <= _MAX_CHALLENGE:
            raise ScepError(FailInfo.BAD_REQUEST, f"the challengePassword must be 1 to {_MAX_CHALLENGE} characters")
    capabilities = attributes.get(str(SMIME_CAPABILITIES))
    return text, _ciphers_of(capabilities) if capabilities is not None else []


def _decode_attributes(der: bytes) -> tuple[str | None, list[Cipher]]:
    request = decode(der, CERTIFICATION_REQUEST, "PKCS#10 request")
    challenge: str | None = None
    announced: list[Cipher] = []
    for item in request["certificationRequestInfo"]["attributes"]:
        if item["attrType"] == CHALLENGE_PASSWORD:
            challenge = _challenge_of(item)
        elif item["attrType"] == SMIME_CAPABILITIES and len(item["attrValues"]) == 1:
            announced.extend(_ciphers_of(bytes(item["attrValues"][0])))
    return challenge, announced


def _verified_csr(der: bytes) -> x509.CertificateSigningRequest:
    """The CSR with its signature checked: by cryptography when it reads the bytes (DER), else on the bytes as
    received and read by cryptography from their DER re-encoding."""
    try:
        csr = x509.load_der_x509_csr(der)
    except ValueError:
        csr = None  # BER, most likely (a SET OF out of order): the slow path below
    except Exception:  # cryptography raises other errors for other garbage
        raise ScepError(FailInfo.BAD_REQUEST, "the envelope does not hold a PKCS#10 request") from None
    if csr is not None:
        try:
            valid = csr.is_signature_valid
        except Exception:  # an unsupported signature algorithm
            raise ScepError(FailInfo.BAD_ALG, "the PKCS#10 request's signature algorithm is not supported") from None
        if not valid:
            raise ScepError(FailInfo.BAD_MESSAGE_CHECK, "the PKCS#10 request's signature does not verify")
        return csr
    parts = decode(der, SIGNED_REQUEST, "PKCS#10 request")
    info = decode(bytes(parts["certificationRequestInfo"]), REQUEST_INFO, "PKCS#10 request")
    try:
        public_key = serialization.load_der_public_key(bytes(info["subjectPKInfo"]))
    except (ValueError, UnsupportedAlgorithm):
        raise ScepError(FailInfo.BAD_REQUEST, "the PKCS#10 request's public key does not parse") from None
    _verify(
        public_key,
        str(parts["signatureAlgorithm"]["algorithm"]),
        parts["signature"].asOctets(),
        bytes(parts["certificationRequestInfo"]),
    )
    try:
        return x509.load_der_x509_csr(encode(decode(der, CERTIFICATION_REQUEST, "PKCS#10 request")))
    except ValueError:
        raise ScepError(FailInfo.BAD_REQUEST, "the envelope does not hold a PKCS#10 request") from None


def _verify(public_key: object, oid: str, signature: bytes, data: bytes) -> None:
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and (digest := _BY_RSA_OID.get(oid)):
            public_key.verify(signature, data, padding.PKCS1v15(), digest.algorithm())
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and (digest := _BY_ECDSA_OID.get(oid)):
            public_key.verify(signature, data, ec.ECDSA(digest.algorithm()))
        elif isinstance(public_key, ed25519.Ed25519PublicKey) and oid == _ED25519:
            public_key.verify(signature, data)
        else:
            raise ScepError(FailInfo.BAD_ALG, f"PKCS#10 signature algorithm {oid} is not supported")
    except InvalidSignature:
        raise ScepError(FailInfo.BAD_MESSAGE_CHECK, "the PKCS#10 request's signature does not verify") from None


def load_issuer_and_subject(der: bytes) -> IssuerAndSubject:
    value = decode(der, ISSUER_AND_SUBJECT, "CertPoll's IssuerAndSubject")
    return IssuerAndSubject(
        issuer=load_name(value["issuer"], "CertPoll's issuer"),
        subject=load_name(value["subject"], "CertPoll's subject"),
    )


def load_issuer_and_serial(der: bytes) -> IssuerAndSerial:
    value = decode(der, rfc5652.IssuerAndSerialNumber(), "IssuerAndSerialNumber")
    serial_number = int(value["serialNumber"])
    if serial_number < 0:
        raise ScepError(FailInfo.BAD_REQUEST, "a serial number is positive")
    return IssuerAndSerial(issuer=load_name(value["issuer"], "issuer name"), serial_number=serial_number)


def _challenge_of(item: rfc5652.Attribute) -> str:
    if len(item["attrValues"]) != 1:
        raise ScepError(FailInfo.BAD_REQUEST, "a challengePassword has exactly one value")
    value = decode_any(item["attrValues"][0], "challengePassword")
    if not isinstance(value, char.AbstractCharacterString):
        raise ScepError(FailInfo.BAD_REQUEST, "the challengePassword is not a string")
    text = str(value)
    if not 0 < len(text) <= _MAX_CHALLENGE:
        raise ScepError(FailInfo.BAD_REQUEST, f"the challengePassword must be 1 to {_MAX_CHALLENGE} characters")
    return text


def _ciphers_of(der: bytes) -> list[Cipher]:
    """The ciphers we know among SMIMECapabilities; an announcement that does not parse announces nothing."""
    try:
        capabilities = decode(der, SMIME_CAPABILITIES_SPEC, "SMIMECapabilities")
    except ScepError:
        return []
    found = (Cipher.from_oid(str(capability["capabilityID"])) for capability in capabilities)
    return [cipher for cipher in found if cipher is not None]
