"""What a CMP request asks for: ir, cr and kur (CRMF, RFC 4211), p10cr (PKCS #10), rr and genm (certConf is
cmp_confirm's).

Each reader takes a `CmpMessage` whose protection the caller has verified and returns a plain value; every
refusal is a CmpError with the bit RFC 9483 gives (badCertTemplate, badPOP, badRequest, badCertId,
badDataFormat), answered with a rejected ip/cp/kup or rp. A certificate request becomes service.ca.csr's
`CertificateRequest`, so the same policy (`policy.decide`) and issuance serve it as they serve POST /csr.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from service.ca.cmp_crmf import CertReqMsg, Template, read_cert_req_messages, read_extensions, read_template
from service.ca.cmp_der import fields, integer, oid_text, read_tlv, split
from service.ca.cmp_failures import CmpError, FailInfo
from service.ca.cmp_message import CmpMessage
from service.ca.cmp_names import load_general_name, load_name
from service.ca.cmp_protection import verify_signature
from service.ca.csr import CertificateRequest, read_request
from service.ca.names import get_common_name
from service.errors import InvalidCSRError

P10CR_CERT_REQ_ID: Final = -1  # RFC 9483 4.1.4: the certReqId of a p10cr's answer and confirmation
OLD_CERT_ID: Final = "1.3.6.1.5.5.7.5.1.5"  # id-regCtrl-oldCertID (RFC 4211 6.5)
_SAN: Final = "2.5.29.17"
_REASON_CODE: Final = "2.5.29.21"
_REASON_NUMBERS: Final = (  # CRLReason (RFC 5280 5.3.1) by number; 7 is not used
    *("unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded", "cessationOfOperation"),
    *("certificateHold", "-", "removeFromCRL", "privilegeWithdrawn", "aACompromise"),
)


@dataclass(frozen=True)
class CertificationRequest:
    """One ir, cr, kur or p10cr: what to certify, with its proof of possession verified."""

    cert_req_id: int  # 0 for CRMF (RFC 9483), -1 for p10cr
    request: CertificateRequest
    not_before: dt.datetime | None = None  # the template's validity, when it asks for one
    not_after: dt.datetime | None = None
    old_certificate: tuple[x509.Name, int] | None = None  # kur: the oldCertID control (issuer, serial)

    def validity_days(self, now: dt.datetime) -> int | None:
        """The days asked for (from notBefore, or `now`, to notAfter, rounded up); None: the profile's default."""
        if self.not_after is None:
            return None
        return max(1, -(-int((self.not_after - (self.not_before or now)).total_seconds()) // 86400))


@dataclass(frozen=True)
class RevocationRequest:
    issuer: x509.Name
    serial_number: int
    reason: x509.ReasonFlags | None


def read_certification_request(message: CmpMessage, *, allow_ra_verified: bool = False) -> CertificationRequest:
    """ir, cr, kur: exactly one CertReqMsg, certReqId 0, a subject and a public key in the template, and a
    signature POP over the certReq by that key (raVerified only with `allow_ra_verified`, for a request an RA of
    this CA signed). p10cr: a PKCS #10 request whose self-signature verifies."""
    if message.body_type == "p10cr":
        return _p10cr(message)
    if message.body_type not in ("ir", "cr", "kur"):
        raise message.rejection(FailInfo.badRequest, f"a {message.body_type} is not a certification request")
    try:
        messages = read_cert_req_messages(message.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise message.rejection(FailInfo.badDataFormat, f"the CertReqMessages do not read ({exc})") from None
    if len(messages) != 1:
        raise message.rejection(FailInfo.badRequest, "exactly one certificate request per message (RFC 9483 4.1.1)")
    (asked,) = messages
    if asked.cert_req_id != 0:
        raise message.rejection(FailInfo.badRequest, "the certReqId must be 0 (RFC 9483 4.1.1)")
    public_key = _public_key(message, asked.template)
    _check_pop(message, asked, public_key, allow_ra_verified)
    subject = _subject(message, asked.template)
    request = CertificateRequest(subject, get_common_name(subject), _sans(message, asked.template), public_key)
    old = _old_certificate(message, asked) if message.body_type == "kur" else None
    template = asked.template
    return CertificationRequest(0, request, template.not_before, template.not_after, old)


def _p10cr(message: CmpMessage) -> CertificationRequest:
    try:
        csr = x509.load_der_x509_csr(message.body)
        valid = csr.is_signature_valid
    except Exception:  # cryptography raises ValueError and friends for every kind of garbage
        raise message.rejection(FailInfo.badDataFormat, "the p10cr is not a DER PKCS #10 request") from None
    if not valid:
        raise message.rejection(FailInfo.badPOP, "the PKCS #10 request's signature does not verify")
    try:
        request = read_request(csr)
    except InvalidCSRError as exc:
        raise message.rejection(FailInfo.badCertTemplate, exc.detail) from None
    return CertificationRequest(P10CR_CERT_REQ_ID, request)


def _public_key(message: CmpMessage, template: Template) -> CertificatePublicKeyTypes:
    if template.public_key is None:
        raise message.rejection(FailInfo.badCertTemplate, "the template needs a public key (no central key generation)")
    try:
        return serialization.load_der_public_key(template.public_key)  # type: ignore[return-value]
    except Exception:  # ValueError, UnsupportedAlgorithm
        raise message.rejection(FailInfo.badCertTemplate, "the template's public key does not load") from None


def _check_pop(message: CmpMessage, asked: CertReqMsg, public_key: CertificatePublicKeyTypes, ra: bool) -> None:
    pop = asked.pop
    if pop.kind == "raVerified" and ra:
        return
    if pop.kind != "signature" or pop.algorithm is None:
        raise message.rejection(FailInfo.badPOP, f"proof of possession must be a signature, not {pop.kind or 'absent'}")
    if pop.with_input:
        raise message.rejection(FailInfo.badPOP, "POPOSigningKeyInput is not supported: sign the certReq itself")
    try:
        verify_signature(public_key, pop.algorithm, asked.cert_req, pop.signature)
    except CmpError as exc:
        raise message.rejection(FailInfo.badPOP, f"proof of possession: {exc.detail}") from None


def _subject(message: CmpMessage, template: Template) -> x509.Name:
    if template.subject is None:
        raise message.rejection(FailInfo.badCertTemplate, "the template needs a subject")
    try:
        return load_name(template.subject)
    except (ValueError, UnicodeDecodeError) as exc:
        raise message.rejection(FailInfo.badCertTemplate, f"the subject does not read ({exc})") from None


def _sans(message: CmpMessage, template: Template) -> tuple[x509.GeneralName, ...]:
    for extension in template.extensions:
        if extension.oid == _SAN:
            try:
                return tuple(load_general_name(der) for _, der in split(extension.value))
            except (ValueError, UnicodeDecodeError) as exc:
                raise message.rejection(FailInfo.badCertTemplate, f"the subjectAltName does not read ({exc})") from None
    return ()


def _old_certificate(message: CmpMessage, asked: CertReqMsg) -> tuple[x509.Name, int]:
    for control, value in asked.controls:
        if control == OLD_CERT_ID:
            try:
                issuer, serial = fields(value)
                name = load_general_name(issuer[1])
                number = integer(serial[1])
            except (ValueError, UnicodeDecodeError) as exc:
                raise message.rejection(FailInfo.badCertId, f"the oldCertID control does not read ({exc})") from None
            if not isinstance(name, x509.DirectoryName):
                raise message.rejection(FailInfo.badCertId, "the oldCertID issuer must be a directoryName")
            return name.value, number
    raise message.rejection(FailInfo.badCertId, "a kur needs the oldCertID control naming the certificate it updates")


# --- rr and genm -------------------------------------------------------------------------------------------------


def read_revocation_request(message: CmpMessage) -> RevocationRequest:
    """rr with exactly one RevDetails naming the certificate by issuer and serialNumber (RFC 9483 4.2)."""
    if message.body_type != "rr":
        raise message.rejection(FailInfo.badRequest, f"a {message.body_type} is not a revocation request")
    try:
        revocations = [fields(item) for _, item in fields(message.body)]
    except ValueError as exc:
        raise message.rejection(FailInfo.badDataFormat, f"the rr does not read ({exc})") from None
    if len(revocations) != 1:
        raise message.rejection(FailInfo.badRequest, "an rr revokes exactly one certificate")
    (details,) = revocations
    try:
        if not 1 <= len(details) <= 2:
            raise ValueError("RevDetails is SEQUENCE { certDetails, crlEntryDetails }")
        template = read_template(details[0][1])
        extensions = read_extensions(details[1][1]) if len(details) == 2 else ()
    except (ValueError, UnicodeDecodeError) as exc:
        raise message.rejection(FailInfo.badDataFormat, f"the rr does not read ({exc})") from None
    if template.issuer is None or template.serial_number is None:
        raise message.rejection(FailInfo.badCertId, "the rr must name the certificate by issuer and serialNumber")
    try:
        issuer = load_name(template.issuer)
    except (ValueError, UnicodeDecodeError) as exc:
        raise message.rejection(FailInfo.badCertId, f"the issuer does not read ({exc})") from None
    reason = None
    for extension in extensions:
        if extension.oid == _REASON_CODE:
            reason = _reason(message, extension.value)
    return RevocationRequest(issuer, template.serial_number, reason)


def _reason(message: CmpMessage, der: bytes) -> x509.ReasonFlags:
    try:
        tag, start, end = read_tlv(der, 0, len(der))
        number = int.from_bytes(der[start:end], "big") if tag == 0x0A and end == len(der) else -1
        name = _REASON_NUMBERS[number] if 0 <= number < len(_REASON_NUMBERS) else "-"
    except ValueError:
        name = "-"
    if name == "-":
        raise message.rejection(FailInfo.badRequest, "the CRL reason code is not one RFC 5280 defines")
    return x509.ReasonFlags(name)


def read_general_message(message: CmpMessage) -> list[tuple[str, bytes | None]]:
    """genm: (infoType as dotted text, infoValue DER or None) for each InfoTypeAndValue; may be empty."""
    if message.body_type != "genm":
        raise message.rejection(FailInfo.badRequest, f"a {message.body_type} is not a genm")
    questions: list[tuple[str, bytes | None]] = []
    try:
        for _, item in fields(message.body):
            parts = fields(item)
            if not 1 <= len(parts) <= 2:
                raise ValueError("InfoTypeAndValue is SEQUENCE { infoType, infoValue }")
            questions.append((oid_text(parts[0][1]), parts[1][1] if len(parts) == 2 else None))
    except ValueError as exc:
        raise message.rejection(FailInfo.badDataFormat, f"the genm does not read ({exc})") from None
    return questions
