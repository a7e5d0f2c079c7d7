"""genm/genp (RFC 9483 4.3, RFC 9480 2.3): the questions a client may ask and the answers this CA gives.

    answers = answer_general_message(read_general_message(message), GeneralAnswers(...))
    der = build_response(message.header, general_response(answers), protection, now=now).der

Answered: caCerts (this CA's certificates), rootCaCert / rootCaKeyUpdate (no root key update to offer: the
answer is rootCaKeyUpdate without a value, as RFC 9483 4.3.2 says), certReqTemplate (a subject whose CN the
client fills in, and the profile's key types), signKeyPairTypes (the same key types, RFC 4210
5.3.19.2) and currentCRL. Any other infoType gets no answer: the genp leaves it out (RFC 4210 5.3.19: a receiver
may ignore what it does not support), and OpenSSL then prints "genp contains no ITAV".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyasn1.type import univ
from pyasn1_modules import rfc3280, rfc5280

from service.ca.cmp_asn1 import (
    ATTRIBUTE_TYPE_AND_VALUE,
    CERT_REQ_TEMPLATE_CONTENT,
    ID_IT_CA_CERTS,
    ID_IT_CERT_REQ_TEMPLATE,
    ID_IT_CURRENT_CRL,
    ID_IT_ROOT_CA_CERT,
    ID_IT_ROOT_CA_KEY_UPDATE,
    ID_IT_SIGN_KEY_PAIR_TYPES,
    ID_REG_CTRL_ALG_ID,
    ID_REG_CTRL_RSA_KEY_LEN,
    INFO_TYPE_AND_VALUE,
    INFO_TYPE_AND_VALUES,
    decode,
    encode,
)
from service.ca.cmp_response import ResponseBody
from service.ca.der import tlv

CA_CERTS: Final = str(ID_IT_CA_CERTS)
ROOT_CA_CERT: Final = str(ID_IT_ROOT_CA_CERT)
ROOT_CA_KEY_UPDATE: Final = str(ID_IT_ROOT_CA_KEY_UPDATE)
CERT_REQ_TEMPLATE: Final = str(ID_IT_CERT_REQ_TEMPLATE)
SIGN_KEY_PAIR_TYPES: Final = str(ID_IT_SIGN_KEY_PAIR_TYPES)
CURRENT_CRL: Final = str(ID_IT_CURRENT_CRL)

_EC_PUBLIC_KEY: Final = "1.2.840.10045.2.1"
_RSA: Final = "1.2.840.113549.1.1.1"
_CURVES: Final = {"p256": "1.2.840.10045.3.1.7", "p384": "1.3.132.0.34", "p521": "1.3.132.0.35"}
_EDDSA: Final = {"ed25519": "1.3.101.112"}
_EMPTY_CN: Final = tlv(0x30, tlv(0x31, tlv(0x30, b"\x06\x03\x55\x04\x03", b"\x0c\x00")))  # CN= (to be filled)


@dataclass(frozen=True)
class GeneralAnswers:
    """What the caller knows: the CA certificates (issuing CA first, root last), the profile's key types
    (service.ca.profiles names: p256, p384, p521, ed25519, rsa) and RSA minimum, and the current CRL's DER."""

    ca_certificates: Sequence[x509.Certificate]
    key_types: Iterable[str] = ("p256",)
    min_rsa_bits: int = 2048
    current_crl: bytes | None = None


def answer_general_message(
    questions: Sequence[tuple[str, bytes | None]], answers: GeneralAnswers
) -> list[tuple[str, bytes | None]]:
    """(infoType, infoValue or None) for each question this CA answers, in the order asked."""
    result: list[tuple[str, bytes | None]] = []
    for info_type, _ in questions:
        if info_type == CA_CERTS and answers.ca_certificates:
            result.append((CA_CERTS, ca_certs_value(answers.ca_certificates)))
        elif info_type in (ROOT_CA_CERT, ROOT_CA_KEY_UPDATE):
            result.append((ROOT_CA_KEY_UPDATE, None))  # no update of the root's key is on offer
        elif info_type == CERT_REQ_TEMPLATE:
            result.append((CERT_REQ_TEMPLATE, cert_req_template_value(answers.key_types, answers.min_rsa_bits)))
        elif info_type == SIGN_KEY_PAIR_TYPES:
            result.append((SIGN_KEY_PAIR_TYPES, sign_key_pair_types_value(answers.key_types)))
        elif info_type == CURRENT_CRL and answers.current_crl is not None:
            result.append((CURRENT_CRL, answers.current_crl))
    return result


def _algorithms(key_types: Iterable[str]) -> list[rfc5280.AlgorithmIdentifier]:
    algorithms = []
    for kind in sorted(set(key_types)):
        identifier = rfc5280.AlgorithmIdentifier()
        if kind in _CURVES:
            identifier["algorithm"] = univ.ObjectIdentifier(_EC_PUBLIC_KEY)
            identifier["parameters"] = univ.Any(encode(univ.ObjectIdentifier(_CURVES[kind])))
        elif kind in _EDDSA:
            identifier["algorithm"] = univ.ObjectIdentifier(_EDDSA[kind])
        elif kind == "rsa":
            identifier["algorithm"] = univ.ObjectIdentifier(_RSA)
            identifier["parameters"] = univ.Any(b"\x05\x00")
        else:
            continue
        algorithms.append(identifier)
    return algorithms


def sign_key_pair_types_value(key_types: Iterable[str]) -> bytes:
    """SEQUENCE OF AlgorithmIdentifier: the key types a certificate may be requested for."""
    return tlv(0x30, *(encode(algorithm) for algorithm in _algorithms(key_types)))


def cert_req_template_value(key_types: Iterable[str], min_rsa_bits: int) -> bytes:
    """CertReqTemplateContent (RFC 9480 2.3.3): a template whose subject is an empty CN (the client fills it in)
    and one keySpec control per key type: id-regCtrl-algId (EC, EdDSA), id-regCtrl-rsaKeyLen (RSA)."""
    content = CERT_REQ_TEMPLATE_CONTENT.clone()
    content["certTemplate"]["subject"]["rdnSequence"] = _empty_cn()
    for algorithm in _algorithms(key_types):
        control = ATTRIBUTE_TYPE_AND_VALUE.clone()
        if str(algorithm["algorithm"]) == _RSA:
            control["type"] = ID_REG_CTRL_RSA_KEY_LEN
            control["value"] = univ.Any(encode(univ.Integer(min_rsa_bits)))
        else:
            control["type"] = ID_REG_CTRL_ALG_ID
            control["value"] = univ.Any(encode(algorithm))
        content["keySpec"].append(control)
    return encode(content)


def _empty_cn() -> rfc3280.RDNSequence:
    return decode(_EMPTY_CN, rfc3280.RDNSequence())


def general_response(answers: Sequence[tuple[str, bytes | None]]) -> ResponseBody:
    """genp: one InfoTypeAndValue per (infoType, infoValue DER or None for "nothing to give")."""
    content = INFO_TYPE_AND_VALUES.clone()
    for info_type, value in answers:
        item = INFO_TYPE_AND_VALUE.clone()
        item["infoType"] = univ.ObjectIdentifier(info_type)
        if value is not None:
            item["infoValue"] = univ.Any(value)
        content.append(item)
    return ResponseBody("genp", encode(content))


def ca_certs_value(certificates: Sequence[x509.Certificate]) -> bytes:
    """id-it-caCerts (RFC 9480 2.3.1): SEQUENCE SIZE (1..MAX) OF CMPCertificate."""
    return tlv(0x30, *(c.public_bytes(serialization.Encoding.DER) for c in certificates))
