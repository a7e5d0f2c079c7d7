"""Issuance: the one place that builds certificates.

The CA key never comes here; a `Signer` (the key store) signs the builder for us.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from typing import Final, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from service.ca.keys import PrivateKey, signature_hash
from service.ca.policy import LeafSpec
from service.ca.usage import has_key_encipherment, is_extended_key_usage_critical

SERIAL_BITS: Final = 159  # 20 octets, top bit clear so the DER integer stays positive
BACKDATE: Final = dt.timedelta(minutes=5)  # tolerate clients whose clocks run a little slow


class Signer(Protocol):
    """Signs for the caller without handing out the key (see service.keys)."""

    def public_key(self) -> CertificatePublicKeyTypes: ...

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate: ...

    def sign_crl(self, builder: x509.CertificateRevocationListBuilder) -> x509.CertificateRevocationList: ...

    def sign_crl_tbs(self, tbs_certlist: bytes) -> bytes:
        """The signature over a DER TBSCertList, by the algorithm `sign_crl` uses (see ca.crl.build_crl_der)."""
        ...

    def sign_tbs_certificate(self, tbs_certificate: bytes) -> bytes:
        """The signature over a DER TBSCertificate, by the algorithm `sign_certificate` uses (see ca.leaf)."""
        ...

    def sign_ocsp(self, builder: ocsp.OCSPResponseBuilder, responder: x509.Certificate) -> ocsp.OCSPResponse:
        """Signs as `responder` (the CA itself), named by key hash in the response; the builder has no responder."""
        ...


def random_serial_number() -> int:
    """A positive 159-bit serial from the OS CSPRNG, never zero."""
    return secrets.randbits(SERIAL_BITS) | 1


def issuer_id(certificate: x509.Certificate) -> str:
    """A CA's short, URL-safe name: the first 16 hex digits of its certificate's SHA-256 (as in /crl/{issuer id})."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()[:16]


def build_intermediate_builder(
    public_key: CertificatePublicKeyTypes,
    common_name: str,
    issuer: x509.Certificate,
    *,
    now: dt.datetime,
    lifetime: dt.timedelta,
    path_length: int | None = 0,
    name_constraints: x509.NameConstraints | None = None,
    publication_url: str | None = None,
) -> x509.CertificateBuilder:
    """An issuing CA under `issuer` (the root): CA:TRUE with a path length (0: it signs only leaves),
    keyCertSign+cRLSign, optional name constraints (critical, as RFC 5280 asks), never outliving its issuer. With
    `publication_url`, where a relying party finds the root's CRL and certificate: the CRL distribution point
    `<publication url>/crl/<root id>` and AIA caIssuers `<publication url>/ca.crt/<root id>` (plain HTTP)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    extensions: list[x509.Extension[x509.ExtensionType]] = [
        x509.Extension(x509.BasicConstraints.oid, True, x509.BasicConstraints(ca=True, path_length=path_length)),
        x509.Extension(x509.KeyUsage.oid, True, _key_usage(cert_sign=True)),
        x509.Extension(x509.SubjectKeyIdentifier.oid, False, x509.SubjectKeyIdentifier.from_public_key(public_key)),
        x509.Extension(x509.AuthorityKeyIdentifier.oid, False, authority_key_identifier(issuer)),
    ]
    if name_constraints is not None:
        extensions.append(x509.Extension(x509.NameConstraints.oid, True, name_constraints))
    if publication_url is not None:
        extensions.extend(_root_addresses(publication_url.rstrip("/"), issuer_id(issuer)))
    return x509.CertificateBuilder(
        issuer_name=issuer.subject,
        subject_name=name,
        public_key=public_key,
        serial_number=random_serial_number(),
        not_valid_before=now - BACKDATE,
        not_valid_after=min(now + lifetime, issuer.not_valid_after_utc),
        extensions=extensions,
    )


def _root_addresses(base: str, root_id: str) -> list[x509.Extension[x509.ExtensionType]]:
    crl = x509.DistributionPoint([x509.UniformResourceIdentifier(f"{base}/crl/{root_id}")], None, None, None)
    ca_issuers = x509.AccessDescription(
        AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(f"{base}/ca.crt/{root_id}")
    )
    return [
        x509.Extension(x509.CRLDistributionPoints.oid, False, x509.CRLDistributionPoints([crl])),
        x509.Extension(x509.AuthorityInformationAccess.oid, False, x509.AuthorityInformationAccess([ca_issuers])),
    ]


def build_ca_certificate(
    key: PrivateKey,
    common_name: str,
    *,
    now: dt.datetime,
    lifetime: dt.timedelta,
    publication_url: str | None = None,
) -> x509.Certificate:
    """A self-signed root: CA:TRUE and keyCertSign+cRLSign, both critical, with SKI and AKI."""
    builder = build_root_builder(
        key.public_key(), common_name, now=now, lifetime=lifetime, publication_url=publication_url
    )
    return builder.sign(key, signature_hash(key))


def root_key_identifier(root: x509.Certificate) -> str | None:
    """The hex of a root's subject key identifier: the name of its CRL in its own CRL distribution point."""
    try:
        return root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    except x509.ExtensionNotFound:  # a root made elsewhere without one
        return None


def build_root_builder(
    public_key: CertificatePublicKeyTypes,
    common_name: str,
    *,
    now: dt.datetime,
    lifetime: dt.timedelta,
    publication_url: str | None = None,
) -> x509.CertificateBuilder:
    """`build_ca_certificate` before the signature (for a key store that signs for us, such as an HSM). With
    `publication_url`, an offline root's: a CRL distribution point to its own CRL, `<publication url>/crl/<key id>`
    (its issuer id, a digest of the certificate, cannot be in the certificate). A trust anchor needs none (RFC 5280
    6.1), but `openssl verify -crl_check_all -crl_download` asks for one (openssl/openssl#8439)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    extensions: list[x509.Extension[x509.ExtensionType]] = []
    if publication_url is not None:
        url = x509.UniformResourceIdentifier(f"{publication_url.rstrip('/')}/crl/{ski.digest.hex()}")
        points = x509.CRLDistributionPoints([x509.DistributionPoint([url], None, None, None)])
        extensions.append(x509.Extension(x509.CRLDistributionPoints.oid, False, points))
    return x509.CertificateBuilder(
        issuer_name=name,
        subject_name=name,
        public_key=public_key,
        serial_number=random_serial_number(),
        not_valid_before=now - BACKDATE,
        not_valid_after=now + lifetime,
        extensions=[
            x509.Extension(x509.BasicConstraints.oid, True, x509.BasicConstraints(ca=True, path_length=None)),
            x509.Extension(x509.KeyUsage.oid, True, _key_usage(cert_sign=True)),
            x509.Extension(x509.SubjectKeyIdentifier.oid, False, ski),
            x509.Extension(
                x509.AuthorityKeyIdentifier.oid,
                False,
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            ),
            *extensions,
        ],
    )


def build_leaf_builder(
    spec: LeafSpec,
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Certificate,
    *,
    serial_number: int,
    now: dt.datetime,
    public_url: str,
    issuer_id: str | None = None,
) -> x509.CertificateBuilder:
    """Everything a leaf carries, per its profile; the signer adds the signature. With `issuer_id`, the CRL and
    caIssuers addresses are that issuer's own (`<public_url>/crl/<issuer id>`), so they stay right after a
    rotation; without, the current issuer's (`/crl`, `/ca.crt`)."""
    not_after = min(now + dt.timedelta(days=spec.validity_days), issuer.not_valid_after_utc)
    usages = spec.profile.extended_key_usage
    authority_key_id, *addresses = _issuer_extensions(issuer, public_url.rstrip("/"), issuer_id)
    extensions: list[x509.Extension[x509.ExtensionType]] = [
        x509.Extension(x509.BasicConstraints.oid, True, x509.BasicConstraints(ca=False, path_length=None)),
        x509.Extension(x509.KeyUsage.oid, True, _key_usage(key_encipherment=has_key_encipherment(public_key, usages))),
        x509.Extension(
            x509.ExtendedKeyUsage.oid, is_extended_key_usage_critical(usages), x509.ExtendedKeyUsage(list(usages))
        ),
        x509.Extension(x509.SubjectKeyIdentifier.oid, False, x509.SubjectKeyIdentifier.from_public_key(public_key)),
        authority_key_id,
        x509.Extension(x509.SubjectAlternativeName.oid, False, x509.SubjectAlternativeName(list(spec.sans))),
        *addresses,
    ]
    return x509.CertificateBuilder(
        issuer_name=issuer.subject,
        subject_name=spec.subject,
        public_key=public_key,
        serial_number=serial_number,
        not_valid_before=now - BACKDATE,
        not_valid_after=not_after,
        extensions=extensions,
    )


@functools.lru_cache(maxsize=16)
def _issuer_extensions(
    issuer: x509.Certificate, base: str, issuer_id: str | None
) -> tuple[x509.Extension[x509.ExtensionType], ...]:
    """The same in every leaf of one CA and URL (AKI, CRL and OCSP addresses): built once, not per certificate."""
    suffix = f"/{issuer_id}" if issuer_id is not None else ""
    return (
        x509.Extension(x509.AuthorityKeyIdentifier.oid, False, authority_key_identifier(issuer)),
        x509.Extension(
            x509.CRLDistributionPoints.oid,
            False,
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(f"{base}/crl{suffix}")], None, None, None)]
            ),
        ),
        x509.Extension(
            x509.AuthorityInformationAccess.oid,
            False,
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(f"{base}/ocsp")
                    ),
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(f"{base}/ca.crt{suffix}"),
                    ),
                ]
            ),
        ),
    )


def authority_key_identifier(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:  # an imported CA made without SKI
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _key_usage(*, cert_sign: bool = False, key_encipherment: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
