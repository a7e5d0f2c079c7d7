"""CMP's ASN.1: the structures of RFC 4210/9480 (CMP), RFC 4211 (CRMF) and RFC 9481 (PBMAC1) that pocketca reads
and writes, with pyasn1 (its modules give CRMF, RFC 5280 and PKCS #5; the rest is defined here).

Certificates, names and the PKCS#10 request travel as `univ.Any` (their DER, whole): cryptography reads and writes
those, and pyasn1 never spends time taking a certificate apart. The structures every enrolment passes through
(the header, CRMF, certConf, the ip body) are read and written by hand in cmp_der, for speed; the specs here are
what the rest uses (rr's and genm's answers, error messages, PBMAC1, the certificate request template) and what
the tests hold cmp_der to.
"""

from __future__ import annotations

from typing import Final, TypeVar

from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import base, char, constraint, namedtype, tag, univ, useful
from pyasn1_modules import rfc4210, rfc4211, rfc5280

MAX: Final = float("inf")

# --- object identifiers ------------------------------------------------------------------------------------------

ID_PBKDF2: Final = univ.ObjectIdentifier("1.2.840.113549.1.5.12")
ID_IT: Final = "1.3.6.1.5.5.7.4"
ID_REG_CTRL: Final = "1.3.6.1.5.5.7.5.1"


def _it(number: int) -> univ.ObjectIdentifier:
    return univ.ObjectIdentifier(f"{ID_IT}.{number}")


ID_IT_SIGN_KEY_PAIR_TYPES: Final = _it(2)
ID_IT_CURRENT_CRL: Final = _it(6)
ID_IT_IMPLICIT_CONFIRM: Final = _it(13)
ID_IT_CA_CERTS: Final = _it(17)  # RFC 9480 2.3.1
ID_IT_ROOT_CA_KEY_UPDATE: Final = _it(18)  # RFC 9480 2.3.2
ID_IT_CERT_REQ_TEMPLATE: Final = _it(19)  # RFC 9480 2.3.3
ID_IT_ROOT_CA_CERT: Final = _it(20)  # RFC 9480 2.3.2
ID_REG_CTRL_OLD_CERT_ID: Final = univ.ObjectIdentifier(f"{ID_REG_CTRL}.5")  # RFC 4211 6.5
ID_REG_CTRL_ALG_ID: Final = univ.ObjectIdentifier(f"{ID_REG_CTRL}.11")  # RFC 9480 2.3.3
ID_REG_CTRL_RSA_KEY_LEN: Final = univ.ObjectIdentifier(f"{ID_REG_CTRL}.12")  # RFC 9480 2.3.3


def _explicit(number: int) -> tag.Tag:
    return tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, number)


# --- specs (pyasn1 schema objects: decode with one, `.clone()` it to build a value) --------------------------------

PKI_FREE_TEXT: Final = univ.SequenceOf(componentType=char.UTF8String(), sizeSpec=constraint.ValueSizeConstraint(1, MAX))
INFO_TYPE_AND_VALUE: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        namedtype.NamedType("infoType", univ.ObjectIdentifier()),
        namedtype.OptionalNamedType("infoValue", univ.Any()),
    )
)
INFO_TYPE_AND_VALUES: Final = univ.SequenceOf(componentType=INFO_TYPE_AND_VALUE)  # genm, genp, generalInfo

# RFC 4210 5.1.1; sender and recipient are GeneralNames kept whole (in practice a directoryName: [4] Name)
PKI_HEADER: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        namedtype.NamedType("pvno", univ.Integer()),
        namedtype.NamedType("sender", univ.Any()),
        namedtype.NamedType("recipient", univ.Any()),
        namedtype.OptionalNamedType("messageTime", useful.GeneralizedTime().subtype(explicitTag=_explicit(0))),
        namedtype.OptionalNamedType("protectionAlg", rfc5280.AlgorithmIdentifier().subtype(explicitTag=_explicit(1))),
        namedtype.OptionalNamedType("senderKID", univ.OctetString().subtype(explicitTag=_explicit(2))),
        namedtype.OptionalNamedType("recipKID", univ.OctetString().subtype(explicitTag=_explicit(3))),
        namedtype.OptionalNamedType("transactionID", univ.OctetString().subtype(explicitTag=_explicit(4))),
        namedtype.OptionalNamedType("senderNonce", univ.OctetString().subtype(explicitTag=_explicit(5))),
        namedtype.OptionalNamedType("recipNonce", univ.OctetString().subtype(explicitTag=_explicit(6))),
        namedtype.OptionalNamedType("freeText", PKI_FREE_TEXT.subtype(explicitTag=_explicit(7))),
        namedtype.OptionalNamedType("generalInfo", INFO_TYPE_AND_VALUES.subtype(explicitTag=_explicit(8))),
    )
)

# request bodies: CRMF from pyasn1-modules (RFC 4211), the rest here
CERT_REQ_MESSAGES: Final = rfc4211.CertReqMessages()
CERT_ID: Final = rfc4211.CertId()
PBM_PARAMETER: Final = rfc4211.PBMParameter()
REV_REQ_CONTENT: Final = univ.SequenceOf(
    componentType=univ.Sequence(  # RevDetails
        componentType=namedtype.NamedTypes(
            namedtype.NamedType("certDetails", rfc4211.CertTemplate()),
            namedtype.OptionalNamedType("crlEntryDetails", rfc5280.Extensions()),
        )
    )
)
CERT_CONFIRM_CONTENT: Final = univ.SequenceOf(
    componentType=univ.Sequence(  # CertStatus; RFC 9480 2.10 adds hashAlg (pvno 3: an EdDSA certificate's hash)
        componentType=namedtype.NamedTypes(
            namedtype.NamedType("certHash", univ.OctetString()),
            namedtype.NamedType("certReqId", univ.Integer()),
            namedtype.OptionalNamedType("statusInfo", rfc4210.PKIStatusInfo()),
            namedtype.OptionalNamedType("hashAlg", rfc5280.AlgorithmIdentifier().subtype(explicitTag=_explicit(0))),
        )
    )
)

# response bodies; certificates as their DER, whole
CERTIFICATES: Final = univ.SequenceOf(componentType=univ.Any(), sizeSpec=constraint.ValueSizeConstraint(1, MAX))
CERT_RESPONSE: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        namedtype.NamedType("certReqId", univ.Integer()),
        namedtype.NamedType("status", rfc4210.PKIStatusInfo()),
        namedtype.OptionalNamedType(
            "certifiedKeyPair",
            univ.Sequence(
                componentType=namedtype.NamedTypes(
                    namedtype.NamedType(
                        "certOrEncCert",
                        univ.Choice(
                            componentType=namedtype.NamedTypes(
                                namedtype.NamedType("certificate", univ.Any().subtype(explicitTag=_explicit(0)))
                            )
                        ),
                    )
                )
            ),
        ),
    )
)
CERT_REP_MESSAGE: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        namedtype.OptionalNamedType("caPubs", CERTIFICATES.subtype(explicitTag=_explicit(1))),
        namedtype.NamedType("response", univ.SequenceOf(componentType=CERT_RESPONSE)),
    )
)
REV_REP_CONTENT: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        namedtype.NamedType(
            "status",
            univ.SequenceOf(componentType=rfc4210.PKIStatusInfo(), sizeSpec=constraint.ValueSizeConstraint(1, MAX)),
        ),
    )
)
PKI_STATUS_INFO: Final = rfc4210.PKIStatusInfo()
PKI_FAILURE_INFO: Final = rfc4210.PKIFailureInfo()
ERROR_MSG_CONTENT: Final = rfc4210.ErrorMsgContent()
ATTRIBUTE_TYPE_AND_VALUE: Final = rfc4211.AttributeTypeAndValue()
# RFC 9480 2.3.3: the template a client should fill, and the key types (controls) it may use
CERT_REQ_TEMPLATE_CONTENT: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        namedtype.NamedType("certTemplate", rfc4211.CertTemplate()),
        namedtype.OptionalNamedType("keySpec", rfc4211.Controls()),
    )
)


# --- decoding and encoding --------------------------------------------------------------------------------------

Spec = TypeVar("Spec", bound=base.Asn1Item)


def decode(der: bytes, spec: Spec) -> Spec:
    """DER -> the pyasn1 value of `spec`; ValueError for anything that does not decode whole."""
    try:
        value, rest = decoder.decode(der, asn1Spec=spec)
    except (PyAsn1Error, TypeError, ValueError, IndexError, KeyError, RecursionError) as exc:
        raise ValueError(f"does not decode: {type(exc).__name__}") from None
    if rest:
        raise ValueError("bytes after the end")
    return value  # type: ignore[no-any-return]


def encode(value: base.Asn1Item) -> bytes:
    return bytes(encoder.encode(value))
