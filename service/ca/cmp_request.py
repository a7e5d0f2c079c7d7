"""What a CMP request asks for: ir, cr and kur (CRMF, RFC 4211), p10cr (PKCS #10), certConf, rr and genm.

Each reader takes a `CmpMessage` whose protection the caller has verified and returns a plain value; every
refusal is a CmpError with the bit RFC 9483 gives (badCertTemplate, badPOP, badRequest, badCertId,
badDataFormat). A certificate request becomes service.ca.csr's `CertificateRequest`, so the same policy
(`policy.decide`) and issuance serve it as they serve POST /csr.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from pyasn1.type import univ

from service.ca.cmp_asn1 import (
    CERT_ID,
    CERT_REQ_MESSAGES,
    ID_REG_CTRL_OLD_CERT_ID,
    INFO_TYPE_AND_VALUES,
    REV_REQ_CONTENT,
    decode,
    encode,
    read_tlv,
    split,
)
from service.ca.cmp_failures import CmpError, FailInfo
from service.ca.cmp_message import CmpMessage
from service.ca.cmp_names import load_general_name, load_name
from service.ca.cmp_protection import verify_signature
from service.ca.csr import CertificateRequest, read_request
from service.ca.names import get_common_name
from service.errors import InvalidCSRError

P10CR_CERT_REQ_ID: Final = -1  # RFC 9483 4.1.4: the certReqId of a p10cr's answer and confirmation
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
    validity_days: int | None = None  # asked for in the template's validity, rounded up; None: the profile's
    old_certificate: tuple[x509.Name, int] | None = None  # kur: the oldCertID control (issuer, serial)


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
        messages = decode(message.body, CERT_REQ_MESSAGES)
        raw_request = split(message.body)[0][1]
        raw_cert_req = split(raw_request)[0][1]  # the certReq exactly as sent: what the POP signs
    except (ValueError, IndexError) as exc:
        raise message.rejection(FailInfo.badDataFormat, f"the CertReqMessages do not read ({exc})") from None
    if len(messages) != 1:
        raise message.rejection(FailInfo.badRequest, "exactly one certificate request per message (RFC 9483 4.1.1)")
    cert_req = messages[0]["certReq"]
    if int(cert_req["certReqId"]) != 0:
        raise message.rejection(FailInfo.badRequest, "the certReqId must be 0 (RFC 9483 4.1.1)")
    template = cert_req["certTemplate"]
    public_key = _public_key(message, template)
    _check_pop(message, messages[0], public_key, raw_cert_req, allow_ra_verified)
    subject = _subject(message, template)
    request = CertificateRequest(subject, get_common_name(subject), _sans(message, template), public_key)
    old = _old_certificate(message, cert_req) if message.body_type == "kur" else None
    return CertificationRequest(0, request, _validity_days(template), old)


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


def _public_key(message: CmpMessage, template: univ.Sequence) -> CertificatePublicKeyTypes:
    if not template["publicKey"].isValue:
        raise message.rejection(FailInfo.badCertTemplate, "the template needs a public key (no central key generation)")
    spki = b"\x30" + encode(template["publicKey"])[1:]  # [6] IMPLICIT SubjectPublicKeyInfo, retagged
    try:
        return serialization.load_der_public_key(spki)  # type: ignore[return-value]
    except Exception:  # ValueError, UnsupportedAlgorithm
        raise message.rejection(FailInfo.badCertTemplate, "the template's public key does not load") from None


def _check_pop(
    message: CmpMessage, request: univ.Sequence, public_key: CertificatePublicKeyTypes, signed: bytes, ra: bool
) -> None:
    popo = request["popo"]
    kind = popo.getName() if popo.isValue else None
    if kind == "raVerified" and ra:
        return
    if kind != "signature":
        raise message.rejection(FailInfo.badPOP, f"proof of possession must be a signature, not {kind or 'absent'}")
    signing_key = popo["signature"]
    if signing_key["poposkInput"].isValue:
        raise message.rejection(FailInfo.badPOP, "POPOSigningKeyInput is not supported: sign the certReq itself")
    signature = signing_key["signature"].asOctets()
    try:
        verify_signature(public_key, signing_key["algorithmIdentifier"], signed, signature)
    except CmpError as exc:
        raise message.rejection(FailInfo.badPOP, f"proof of possession: {exc.detail}") from None


def _subject(message: CmpMessage, template: univ.Sequence) -> x509.Name:
    if not template["subject"].isValue:
        raise message.rejection(FailInfo.badCertTemplate, "the template needs a subject")
    try:
        return load_name(encode(template["subject"]["rdnSequence"]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise message.rejection(FailInfo.badCertTemplate, f"the subject does not read ({exc})") from None


def _sans(message: CmpMessage, template: univ.Sequence) -> tuple[x509.GeneralName, ...]:
    if not template["extensions"].isValue:
        return ()
    for extension in template["extensions"]:
        if str(extension["extnID"]) == _SAN:
            try:
                return tuple(load_general_name(der) for _, der in split(extension["extnValue"].asOctets()))
            except (ValueError, UnicodeDecodeError) as exc:
                raise message.rejection(FailInfo.badCertTemplate, f"the subjectAltName does not read ({exc})") from None
    return ()


def _validity_days(template: univ.Sequence) -> int | None:
    """Days from notBefore (or now) to notAfter, rounded up; None when the template asks for no notAfter."""
    validity = template["validity"]
    if not validity.isValue or not validity["notAfter"].isValue:
        return None
    not_after = _time(validity["notAfter"])
    not_before = _time(validity["notBefore"]) if validity["notBefore"].isValue else None
    if not_after is None:
        return None
    start = not_before or dt.datetime.now(dt.UTC)
    return max(1, -(-int((not_after - start).total_seconds()) // 86400))


def _time(value: univ.Choice) -> dt.datetime | None:
    try:
        moment: dt.datetime = value.getComponent().asDateTime
    except (ValueError, TypeError, AttributeError):
        return None
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _old_certificate(message: CmpMessage, cert_req: univ.Sequence) -> tuple[x509.Name, int]:
    controls = cert_req["controls"]
    for control in controls if controls.isValue else ():
        if control["type"] == ID_REG_CTRL_OLD_CERT_ID:
            try:
                cert_id = decode(control["value"].asOctets(), CERT_ID)
                issuer = load_general_name(encode(cert_id["issuer"]))
            except (ValueError, UnicodeDecodeError) as exc:
                raise message.rejection(FailInfo.badCertId, f"the oldCertID control does not read ({exc})") from None
            if not isinstance(issuer, x509.DirectoryName):
                raise message.rejection(FailInfo.badCertId, "the oldCertID issuer must be a directoryName")
            return issuer.value, int(cert_id["serialNumber"])
    raise message.rejection(FailInfo.badCertId, "a kur needs the oldCertID control naming the certificate it updates")


# --- rr and genm -------------------------------------------------------------------------------------------------


def read_revocation_request(message: CmpMessage) -> RevocationRequest:
    """rr with exactly one RevDetails naming the certificate by issuer and serialNumber (RFC 9483 4.2)."""
    if message.body_type != "rr":
        raise message.rejection(FailInfo.badRequest, f"a {message.body_type} is not a revocation request")
    try:
        content = decode(message.body, REV_REQ_CONTENT)
    except ValueError as exc:
        raise message.rejection(FailInfo.badDataFormat, f"the rr does not read ({exc})") from None
    if len(content) != 1:
        raise message.rejection(FailInfo.badRequest, "an rr revokes exactly one certificate")
    details = content[0]["certDetails"]
    if not details["issuer"].isValue or not details["serialNumber"].isValue:
        raise message.rejection(FailInfo.badCertId, "the rr must name the certificate by issuer and serialNumber")
    try:
        issuer = load_name(encode(details["issuer"]["rdnSequence"]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise message.rejection(FailInfo.badCertId, f"the issuer does not read ({exc})") from None
    reason = None
    extensions = content[0]["crlEntryDetails"]
    for extension in extensions if extensions.isValue else ():
        if str(extension["extnID"]) == _REASON_CODE:
            reason = _reason(message, extension["extnValue"].asOctets())
    return RevocationRequest(issuer, int(details["serialNumber"]), reason)


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
    try:
        content = decode(message.body, INFO_TYPE_AND_VALUES)
    except ValueError as exc:
        raise message.rejection(FailInfo.badDataFormat, f"the genm does not read ({exc})") from None
    return [
        (str(item["infoType"]), item["infoValue"].asOctets() if item["infoValue"].isValue else None) for item in content
    ]
