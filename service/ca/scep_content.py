"""What a decrypted pkcsPKIEnvelope holds (RFC 8894 §3.3): a PKCS#10 request (PKCSReq, RenewalReq), an
IssuerAndSubject (CertPoll) or an IssuerAndSerialNumber (GetCert, GetCRL)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier
from pyasn1.type import char
from pyasn1_modules import rfc5652

from service.ca.scep_asn1 import (
    CERTIFICATION_REQUEST,
    CHALLENGE_PASSWORD,
    ISSUER_AND_SUBJECT,
    SMIME_CAPABILITIES,
    SMIME_CAPABILITIES_SPEC,
    decode,
    decode_any,
    load_name,
)
from service.ca.scep_types import Cipher, FailInfo, ScepError

_SMIME_CAPABILITIES = ObjectIdentifier(str(SMIME_CAPABILITIES))


@dataclass(frozen=True)
class CertificateRequest:
    """PKCSReq's and RenewalReq's content: a CSR whose self-signature verifies, the challengePassword it carries
    (None when it has none), and the ciphers it announces in an SMIMECapabilities attribute or extension."""

    csr: x509.CertificateSigningRequest
    challenge_password: str | None
    announced_ciphers: tuple[Cipher, ...]

    def __repr__(self) -> str:  # the challenge is a secret: never in a log line or a traceback
        return f"CertificateRequest(subject={self.csr.subject.rfc4514_string()!r}, challenge=<hidden>)"


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


def load_certificate_request(der: bytes) -> CertificateRequest:
    try:
        csr = x509.load_der_x509_csr(der)
        valid = csr.is_signature_valid
    except Exception:  # cryptography raises ValueError and friends for every kind of garbage
        raise ScepError(FailInfo.BAD_REQUEST, "the envelope does not hold a PKCS#10 request") from None
    if not valid:
        raise ScepError(FailInfo.BAD_MESSAGE_CHECK, "the PKCS#10 request's signature does not verify")
    request = decode(der, CERTIFICATION_REQUEST, "PKCS#10 request")
    challenge: str | None = None
    announced: list[Cipher] = []
    for item in request["certificationRequestInfo"]["attributes"]:
        if item["attrType"] == CHALLENGE_PASSWORD:
            challenge = _challenge_of(item)
        elif item["attrType"] == SMIME_CAPABILITIES and len(item["attrValues"]) == 1:
            announced.extend(_ciphers_of(bytes(item["attrValues"][0])))
    try:
        extension = csr.extensions.get_extension_for_oid(_SMIME_CAPABILITIES).value
    except x509.ExtensionNotFound:
        pass
    except ValueError:
        raise ScepError(FailInfo.BAD_REQUEST, "the PKCS#10 request's extensions do not parse") from None
    else:
        if isinstance(extension, x509.UnrecognizedExtension):
            announced.extend(_ciphers_of(extension.value))
    return CertificateRequest(csr=csr, challenge_password=challenge, announced_ciphers=tuple(dict.fromkeys(announced)))


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
    if not 0 < len(text) <= 255:  # PKCS#9: DirectoryString (SIZE (1..255))
        raise ScepError(FailInfo.BAD_REQUEST, "the challengePassword must be 1 to 255 characters")
    return text


def _ciphers_of(der: bytes) -> list[Cipher]:
    """The ciphers we know among SMIMECapabilities; an announcement that does not parse announces nothing."""
    try:
        capabilities = decode(der, SMIME_CAPABILITIES_SPEC, "SMIMECapabilities")
    except ScepError:
        return []
    found = (Cipher.from_oid(str(capability["capabilityID"])) for capability in capabilities)
    return [cipher for cipher in found if cipher is not None]
