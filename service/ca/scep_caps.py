"""GetCACaps and GetCACert (RFC 8894 §3.5, §4.2), and the degenerate certificates-only SignedData they and a
CertRep SUCCESS carry certificates (and a CRL) in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.ca import scep_der as der
from service.ca.scep_asn1 import ID_DATA, ID_SIGNED_DATA
from service.ca.scep_types import Cipher, Digest

# What we answer GetCACaps with, one keyword a line. Every line is something the server does:
# - AES, DES3: we decrypt both (and single DES, which has no keyword: the RFC's baseline, and all that micromdm's
#   scepclient sends); SHA-1 ... SHA-512: we verify all of them;
# - POSTPKIOperation: PKIOperation by POST as well as by GET; Renewal: RenewalReq;
# - SCEPStandard: RFC 8894 itself (which implies AES, POSTPKIOperation and SHA-256);
# - SHA-384 is also what strongSwan 5.9.8 needs to enrol with its defaults (AES, SHA-256): it tests the keywords by
#   the wrong bits (fixed in 5.9.11), and "SHA-384" happens to sit on the bit it reads for SCEPStandard, which
#   unlocks AES, POST and SHA-256 for it.
# Not listed: GetNextCACert (no CA rollover over SCEP yet) and Update (RFC 8894 drops it).
CA_CAPABILITIES: Final[tuple[str, ...]] = (
    Cipher.AES128.capability,
    Cipher.DES3.capability,
    "POSTPKIOperation",
    "Renewal",
    "SCEPStandard",
    *(digest.capability for digest in Digest),
)

CA_CAPS_MEDIA_TYPE: Final = "text/plain"
CA_CERT_MEDIA_TYPE: Final = "application/x-x509-ca-cert"  # one certificate, DER
CA_RA_CERT_MEDIA_TYPE: Final = "application/x-x509-ca-ra-cert"  # a degenerate PKCS#7 of CA and RA certificates
PKI_MESSAGE_MEDIA_TYPE: Final = "application/x-pki-message"


@dataclass(frozen=True)
class CaCertResponse:
    media_type: str
    body: bytes


def build_ca_caps(capabilities: Sequence[str] = CA_CAPABILITIES) -> bytes:
    """The GetCACaps body: keywords separated by line feeds (RFC 8894 §3.5.2), ending with one."""
    return "".join(f"{keyword}\n" for keyword in capabilities).encode("ascii")


def build_ca_cert_response(ca_chain: Sequence[x509.Certificate], ra: x509.Certificate | None) -> CaCertResponse:
    """GetCACert: with an RA, a degenerate PKCS#7 of the CA chain (the issuing CA first in `ca_chain`) and the RA
    certificate as `application/x-x509-ca-ra-cert`; without one, the issuing CA's DER alone as
    `application/x-x509-ca-cert`.

    Clients tell the two apart by what they can do: the RA has keyEncipherment and no CA flag, so certmonger and
    strongSwan pick it to encrypt to, and micromdm's scepclient encrypts to every certificate here (so pass it
    `-ca-fingerprint` of the RA when the CA is not RSA)."""
    if not ca_chain:
        raise ValueError("GetCACert needs the CA certificate")
    if ra is None:
        return CaCertResponse(CA_CERT_MEDIA_TYPE, ca_chain[0].public_bytes(Encoding.DER))
    return CaCertResponse(CA_RA_CERT_MEDIA_TYPE, build_degenerate_pkcs7([*ca_chain, ra]))


def build_degenerate_pkcs7(
    certificates: Sequence[x509.Certificate], crls: Sequence[x509.CertificateRevocationList] = ()
) -> bytes:
    """A certificates-only SignedData (RFC 8894 §3.4): no content, no signers; the certificates and CRLs in DER
    order (a SET OF is sorted, whatever order they come in: cryptography warns about any other)."""
    signed = der.sequence(
        der.integer(1),
        der.set_of(),  # no digestAlgorithms
        der.sequence(der.oid(str(ID_DATA))),  # no content
        der.context(0, *sorted(certificate.public_bytes(Encoding.DER) for certificate in certificates))
        if certificates
        else b"",
        der.context(1, *sorted(crl.public_bytes(Encoding.DER) for crl in crls)) if crls else b"",
        der.set_of(),  # no signerInfos
    )
    return der.content_info(str(ID_SIGNED_DATA), signed)
