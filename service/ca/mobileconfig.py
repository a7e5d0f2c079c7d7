"""Apple configuration profiles (`.mobileconfig`): the root to trust and the person's identity, either a PKCS#12
(the password asked at install) or a SCEP payload (the key made on the device), signed as CMS SignedData by a
certificate of this CA so the device shows who made the profile.

Identifiers and UUIDs are derived from the invitation, so the same invitation always yields the same profile
identity (a second download replaces the first on the device instead of sitting beside it).

The signer: a leaf of this CA with keyUsage digitalSignature and EKU emailProtection (`build_signer_builder`).
`openssl cms -verify` (purpose smimesign by default) accepts a signer with no EKU or with emailProtection, and
refuses serverAuth, clientAuth, codeSigning and anyExtendedKeyUsage ("unsuitable certificate purpose") unless
given `-purpose any`; a keyUsage without digitalSignature is refused likewise. emailProtection keeps the signer's
key from passing as a TLS client or server. The key must be a file key: cryptography signs CMS with a key object.
"""

from __future__ import annotations

import datetime as dt
import plistlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from service.ca.issue import BACKDATE, authority_key_identifier, random_serial_number

MEDIA_TYPE: Final = "application/x-apple-aspen-config"
# The namespace of this module's UUIDs (uuid5): any constant works, it only has to stay the same.
_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:pocketca:mobileconfig")
_SAFE_ID: Final = re.compile(r"[A-Za-z0-9-]{1,64}")
# Apple's short names for the attributes it knows in a SCEP Subject; any other attribute goes as a dotted OID.
_SHORT_NAMES: Final = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
}
_SAN_KEYS: Final = {x509.RFC822Name: "rfc822Name", x509.DNSName: "dNSName", x509.UniformResourceIdentifier:
                    "uniformResourceIdentifier"}


@dataclass(frozen=True)
class Pkcs12Identity:
    """The identity as a PKCS#12 file (make it `legacy` for Apple keychains that refuse AES). No Password key is
    written, so the device asks for the password at install."""

    bundle: bytes
    filename: str


@dataclass(frozen=True)
class ScepIdentity:
    """The identity made on the device through SCEP with a one-time challenge. Apple's SCEP payload knows RSA
    keys only. `ca_fingerprint` is the hash of the CA certificate the device will get from GetCACert (Apple
    documents SHA-1 and MD5; some MDMs send SHA-256)."""

    url: str
    challenge: str
    subject: x509.Name
    name: str = ""
    sans: tuple[x509.GeneralName, ...] = ()
    key_size: int = 2048
    ca_fingerprint: bytes | None = None
    retries: int = 3
    retry_delay: int = 10


def build_identifier_prefix(public_host: str) -> str:
    """`ca.corp.example` → `example.corp.ca.pocketca`: a reverse-DNS prefix for PayloadIdentifier."""
    labels = [label for label in re.split(r"[^A-Za-z0-9-]+", public_host.lower()) if label]
    return ".".join([*reversed(labels), "pocketca"])


def build_profile(
    *,
    invitation_id: str,
    identifier_prefix: str,
    organization: str,
    display_name: str,
    root: x509.Certificate,
    identity: Pkcs12Identity | ScepIdentity,
    intermediates: Sequence[x509.Certificate] = (),
    description: str = "",
) -> bytes:
    """The profile as an XML property list: the root (com.apple.security.root), any intermediates
    (com.apple.security.pkcs1), then the identity (com.apple.security.pkcs12 or com.apple.security.scep)."""
    if not _SAFE_ID.fullmatch(invitation_id):
        raise ValueError("the invitation id must be 1 to 64 letters, digits or hyphens")
    base = f"{identifier_prefix}.invitation.{invitation_id}"

    def payload(role: str, payload_type: str, name: str, **content: object) -> dict[str, object]:
        return {
            "PayloadType": payload_type,
            "PayloadIdentifier": f"{base}.{role}",
            "PayloadUUID": str(uuid.uuid5(_NAMESPACE, f"{base}.{role}")).upper(),
            "PayloadVersion": 1,
            "PayloadDisplayName": name,
            **content,
        }

    root_name = _common_name(root) or "root CA"
    payloads = [payload("root", "com.apple.security.root", root_name, PayloadContent=_der(root),
                        PayloadCertificateFileName=f"{_file_name(root_name)}.cer")]
    for index, intermediate in enumerate(intermediates):
        name = _common_name(intermediate) or f"intermediate CA {index + 1}"
        payloads.append(payload(f"intermediate{index + 1}", "com.apple.security.pkcs1", name,
                                PayloadContent=_der(intermediate),
                                PayloadCertificateFileName=f"{_file_name(name)}.cer"))
    if isinstance(identity, Pkcs12Identity):
        payloads.append(payload("identity", "com.apple.security.pkcs12", display_name,
                                PayloadContent=identity.bundle, PayloadCertificateFileName=identity.filename))
    else:
        payloads.append(payload("identity", "com.apple.security.scep", display_name,
                                PayloadContent=_scep_content(identity)))
    profile = {
        "PayloadType": "Configuration",
        "PayloadIdentifier": base,
        "PayloadUUID": str(uuid.uuid5(_NAMESPACE, base)).upper(),
        "PayloadVersion": 1,
        "PayloadDisplayName": display_name,
        "PayloadOrganization": organization,
        "PayloadRemovalDisallowed": False,
        "PayloadContent": payloads,
    }
    if description:
        profile["PayloadDescription"] = description
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True)


def sign_profile(
    profile: bytes,
    signer: x509.Certificate,
    key: pkcs7.PKCS7PrivateKeyTypes,
    chain: Sequence[x509.Certificate] = (),
) -> bytes:
    """CMS SignedData (DER) with the profile inside, the signer's certificate and `chain` (its issuers) attached.
    Binary: the plist's bytes are signed as they are, no MIME line-ending canonicalisation."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(profile).add_signer(signer, key, hashes.SHA256())
    for certificate in chain:
        builder = builder.add_certificate(certificate)
    return builder.sign(Encoding.DER, [pkcs7.PKCS7Options.Binary])


def build_signer_builder(
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Certificate,
    common_name: str,
    *,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> x509.CertificateBuilder:
    """The profile signer's certificate before the CA signs it: CA:FALSE, keyUsage digitalSignature (both
    critical), EKU emailProtection (the CMS signing purpose OpenSSL checks; not a TLS identity), SKI and AKI."""
    key_usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + lifetime, issuer.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(authority_key_identifier(issuer), critical=False)
    )


def _scep_content(identity: ScepIdentity) -> dict[str, object]:
    content: dict[str, object] = {
        "URL": identity.url,
        "Challenge": identity.challenge,
        "Keysize": identity.key_size,
        "Key Type": "RSA",
        "Key Usage": 5,  # signing (a TLS client key signs) and encryption (SCEP encrypts its answer to this key)
        "Subject": [
            [[_SHORT_NAMES.get(attribute.oid, attribute.oid.dotted_string), str(attribute.value)]
             for attribute in rdn]
            for rdn in identity.subject.rdns
        ],
        "Retries": identity.retries,
        "RetryDelay": identity.retry_delay,
    }
    if identity.name:
        content["Name"] = identity.name
    if identity.ca_fingerprint is not None:
        content["CAFingerprint"] = identity.ca_fingerprint
    alt_names: dict[str, list[str]] = {}
    for name in identity.sans:
        key = _SAN_KEYS.get(type(name))
        if key is None:
            raise ValueError(f"a SCEP payload cannot ask for a {type(name).__name__} (only email, DNS and URI)")
        alt_names.setdefault(key, []).append(str(name.value))
    if alt_names:
        content["SubjectAltName"] = alt_names
    return content


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def _common_name(certificate: x509.Certificate) -> str | None:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "certificate"
