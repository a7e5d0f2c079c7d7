"""Certificate signing requests: load them from PEM or DER, verify them, read what they ask for."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from service.ca.keys import PrivateKey, signature_hash
from service.ca.names import GeneralName, build_subject, format_general_name, get_common_name, parse_general_name
from service.ca.subject import string_type_problems
from service.errors import InvalidCSRError

_PEM_MARKERS = (b"-----BEGIN CERTIFICATE REQUEST-----", b"-----BEGIN NEW CERTIFICATE REQUEST-----")


@dataclass(frozen=True)
class CertificateRequest:
    """What a verified CSR asks for."""

    subject: x509.Name
    common_name: str | None
    sans: tuple[x509.GeneralName, ...]
    public_key: CertificatePublicKeyTypes

    @property
    def san_values(self) -> list[str]:
        return [format_general_name(name) for name in self.sans]


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """PEM or DER bytes -> CSR whose self-signature verifies; InvalidCSRError otherwise."""
    stripped = data.strip()
    try:
        if stripped.startswith(b"-----BEGIN"):
            if not stripped.startswith(_PEM_MARKERS):
                raise InvalidCSRError("the PEM block is not a CERTIFICATE REQUEST")
            csr = x509.load_pem_x509_csr(stripped.replace(b"NEW CERTIFICATE REQUEST", b"CERTIFICATE REQUEST"))
        else:
            csr = x509.load_der_x509_csr(data)
        valid = csr.is_signature_valid
    except InvalidCSRError:
        raise
    except Exception:  # cryptography raises ValueError and friends for every kind of garbage
        raise InvalidCSRError("the CSR does not parse as PKCS#10 (PEM or DER)") from None
    if not valid:
        raise InvalidCSRError("the CSR's signature does not verify")
    return csr


def read_request(csr: x509.CertificateSigningRequest) -> CertificateRequest:
    """Extracts subject, SANs and key. Raises InvalidCSRError for malformed content."""
    try:
        subject = csr.subject
        public_key = csr.public_key()
        try:
            san_ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            sans: tuple[x509.GeneralName, ...] = tuple(san_ext.value)
        except x509.ExtensionNotFound:
            sans = ()
        common_name = get_common_name(subject)
    except InvalidCSRError:
        raise
    except Exception:
        raise InvalidCSRError("the CSR's subject, extensions or key cannot be read") from None
    if problems := string_type_problems(subject):
        raise InvalidCSRError("; ".join(problems))
    return CertificateRequest(subject=subject, common_name=common_name, sans=sans, public_key=public_key)


def is_supported_san(name: x509.GeneralName) -> bool:
    return isinstance(name, GeneralName)


def build_csr(key: PrivateKey, common_name: str, sans: list[str]) -> x509.CertificateSigningRequest:
    """A CSR for the client tools (`enroll`, `renew`): the CN, and every SAN typed as it parses."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(build_subject(common_name))
    if sans:
        names = [parse_general_name(san) for san in sans]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, signature_hash(key))
