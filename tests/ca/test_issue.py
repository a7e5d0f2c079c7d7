"""Issuance: the CA certificate and the leaves, value by value and with their criticality."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from service.ca.issue import build_ca_certificate, build_leaf_builder, random_serial_number
from service.ca.keys import KEY_TYPES, PrivateKey, describe_public_key, generate_private_key, public_keys_match
from service.ca.names import build_subject, parse_general_name
from service.ca.policy import LeafSpec
from service.ca.profiles import BUILTIN_PROFILES
from service.keys.file_key import FileKeyStore
from tests.helpers import p256

PUBLIC_URL = "https://ca.example.test:8443"
CA_LIFETIME = dt.timedelta(days=3650)
EKU = {
    "client": {ExtendedKeyUsageOID.CLIENT_AUTH},
    "server": {ExtendedKeyUsageOID.SERVER_AUTH},
    "peer": {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH},
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)  # X.509 times hold whole seconds


@pytest.fixture(scope="module")
def ca_keys() -> dict[str, PrivateKey]:
    """One CA key of each type for the module (RSA-4096 is slow to make)."""
    return {key_type: generate_private_key(key_type) for key_type in KEY_TYPES}  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ca_now() -> dt.datetime:
    return utcnow()


@pytest.fixture(scope="module")
def ca_certs(ca_keys: dict[str, PrivateKey], ca_now: dt.datetime) -> dict[str, x509.Certificate]:
    return {
        key_type: build_ca_certificate(key, f"test CA {key_type}", now=ca_now, lifetime=CA_LIFETIME)
        for key_type, key in ca_keys.items()
    }


@pytest.fixture(scope="module")
def rsa_leaf_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ext(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType]:
    return certificate.extensions.get_extension_for_class(kind)


def spec_for(profile: str, names: list[str], cn: str | None = None, days: int = 30) -> LeafSpec:
    cn = cn or names[0]
    sans = tuple(parse_general_name(name) for name in names)
    return LeafSpec(build_subject(cn), cn, sans, BUILTIN_PROFILES[profile], days)


def issue(
    ca_key: PrivateKey,
    ca_cert: x509.Certificate,
    spec: LeafSpec,
    leaf_key: PrivateKey,
    *,
    now: dt.datetime | None = None,
    public_url: str = PUBLIC_URL,
    serial_number: int | None = None,
) -> x509.Certificate:
    builder = build_leaf_builder(
        spec,
        leaf_key.public_key(),
        ca_cert,
        serial_number=serial_number or random_serial_number(),
        now=now or utcnow(),
        public_url=public_url,
    )
    return FileKeyStore(ca_key).sign_certificate(builder)


# --- the CA certificate -------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_ca_certificate_for_each_key_type(
    ca_keys: dict[str, PrivateKey], ca_certs: dict[str, x509.Certificate], ca_now: dt.datetime, key_type: str
) -> None:
    key, cert = ca_keys[key_type], ca_certs[key_type]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"test CA {key_type}")])
    assert cert.subject == name and cert.issuer == name
    assert cert.version == x509.Version.v3
    assert public_keys_match(cert.public_key(), key.public_key())
    assert describe_public_key(cert.public_key()) == key_type

    assert ext(cert, x509.BasicConstraints) == x509.Extension(
        x509.BasicConstraints.oid, True, x509.BasicConstraints(ca=True, path_length=None)
    )
    assert ext(cert, x509.KeyUsage) == x509.Extension(
        x509.KeyUsage.oid,
        True,
        x509.KeyUsage(
            digital_signature=False,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        ),
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    assert ext(cert, x509.SubjectKeyIdentifier) == x509.Extension(x509.SubjectKeyIdentifier.oid, False, ski)
    assert ext(cert, x509.AuthorityKeyIdentifier) == x509.Extension(
        x509.AuthorityKeyIdentifier.oid, False, x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    )
    assert len(cert.extensions) == 4

    cert.verify_directly_issued_by(cert)  # the self-signature verifies
    assert cert.not_valid_before_utc == ca_now - dt.timedelta(minutes=5)
    assert cert.not_valid_after_utc == ca_now + CA_LIFETIME
    assert 0 < cert.serial_number < 2**159


@pytest.mark.parametrize(
    ("key_type", "digest"),
    [("p256", hashes.SHA256), ("p384", hashes.SHA384), ("rsa2048", hashes.SHA256), ("ed25519", type(None))],
)
def test_ca_signature_digest_follows_the_key(
    ca_certs: dict[str, x509.Certificate], key_type: str, digest: type
) -> None:
    assert isinstance(ca_certs[key_type].signature_hash_algorithm, digest)


def test_a_ca_certificate_does_not_verify_as_issued_by_another(ca_certs: dict[str, x509.Certificate]) -> None:
    with pytest.raises((ValueError, TypeError)):
        ca_certs["p256"].verify_directly_issued_by(ca_certs["p384"])


# --- leaves -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["client", "server", "peer"])
@pytest.mark.parametrize("leaf_kind", ["p256", "rsa2048", "ed25519"])
def test_leaf_extensions_per_profile(
    ca_keys: dict[str, PrivateKey],
    ca_certs: dict[str, x509.Certificate],
    rsa_leaf_key: rsa.RSAPrivateKey,
    profile: str,
    leaf_kind: str,
) -> None:
    ca_key, ca_cert = ca_keys["p256"], ca_certs["p256"]
    leaf_keys: dict[str, PrivateKey] = {
        "p256": p256(),
        "rsa2048": rsa_leaf_key,
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }
    leaf_key = leaf_keys[leaf_kind]
    spec = spec_for(profile, ["svc.example.com", "10.0.0.7", "::1", "svc@example.com", "spiffe://example.org/svc"])
    leaf = issue(ca_key, ca_cert, spec, leaf_key)

    assert leaf.subject == build_subject("svc.example.com")
    assert leaf.issuer == ca_cert.subject
    assert public_keys_match(leaf.public_key(), leaf_key.public_key())
    assert ext(leaf, x509.BasicConstraints) == x509.Extension(
        x509.BasicConstraints.oid, True, x509.BasicConstraints(ca=False, path_length=None)
    )
    is_rsa_for_tls_servers = leaf_kind == "rsa2048" and profile != "client"  # keyEncipherment only with serverAuth
    assert ext(leaf, x509.KeyUsage) == x509.Extension(
        x509.KeyUsage.oid,
        True,
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=is_rsa_for_tls_servers,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        ),
    )
    eku = ext(leaf, x509.ExtendedKeyUsage).value
    assert isinstance(eku, x509.ExtendedKeyUsage)
    assert list(eku) and len(list(eku)) == len(EKU[profile]) and set(eku) == EKU[profile]

    assert ext(leaf, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        leaf_key.public_key()
    )
    ca_ski = ext(ca_cert, x509.SubjectKeyIdentifier).value
    assert isinstance(ca_ski, x509.SubjectKeyIdentifier)
    aki = ext(leaf, x509.AuthorityKeyIdentifier)
    assert aki == x509.Extension(
        x509.AuthorityKeyIdentifier.oid, False, x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    )
    assert isinstance(aki.value, x509.AuthorityKeyIdentifier) and aki.value.key_identifier == ca_ski.digest

    assert ext(leaf, x509.SubjectAlternativeName) == x509.Extension(
        x509.SubjectAlternativeName.oid, False, x509.SubjectAlternativeName(list(spec.sans))
    )
    assert ext(leaf, x509.CRLDistributionPoints).value == x509.CRLDistributionPoints(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(f"{PUBLIC_URL}/crl")], None, None, None)]
    )
    aia = ext(leaf, x509.AuthorityInformationAccess).value
    assert isinstance(aia, x509.AuthorityInformationAccess)
    assert sorted((d.access_method.dotted_string, d.access_location.value) for d in aia) == sorted(
        [
            (AuthorityInformationAccessOID.CA_ISSUERS.dotted_string, f"{PUBLIC_URL}/ca.crt"),
            (AuthorityInformationAccessOID.OCSP.dotted_string, f"{PUBLIC_URL}/ocsp"),
        ]
    )
    assert len(leaf.extensions) == 8

    leaf.verify_directly_issued_by(ca_cert)


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_every_ca_key_type_signs_leaves_that_verify(
    ca_keys: dict[str, PrivateKey], ca_certs: dict[str, x509.Certificate], key_type: str
) -> None:
    leaf = issue(ca_keys[key_type], ca_certs[key_type], spec_for("client", ["alice.example.com"]), p256())
    leaf.verify_directly_issued_by(ca_certs[key_type])
    aki = ext(leaf, x509.AuthorityKeyIdentifier).value
    ca_ski = ext(ca_certs[key_type], x509.SubjectKeyIdentifier).value
    assert isinstance(aki, x509.AuthorityKeyIdentifier) and isinstance(ca_ski, x509.SubjectKeyIdentifier)
    assert aki.key_identifier == ca_ski.digest


def test_a_leaf_does_not_verify_against_a_foreign_ca(
    ca_keys: dict[str, PrivateKey], ca_certs: dict[str, x509.Certificate]
) -> None:
    leaf = issue(ca_keys["p256"], ca_certs["p256"], spec_for("client", ["alice.example.com"]), p256())
    other = build_ca_certificate(p256(), "test CA p256", now=utcnow(), lifetime=CA_LIFETIME)  # same name, other key
    with pytest.raises(InvalidSignature):
        leaf.verify_directly_issued_by(other)


def test_a_trailing_slash_in_the_public_url_is_not_doubled(
    ca_keys: dict[str, PrivateKey], ca_certs: dict[str, x509.Certificate]
) -> None:
    leaf = issue(
        ca_keys["p256"], ca_certs["p256"], spec_for("server", ["a.example.com"]), p256(), public_url="https://ca.test/"
    )
    crl_dp = ext(leaf, x509.CRLDistributionPoints).value
    assert isinstance(crl_dp, x509.CRLDistributionPoints)
    assert [name.value for point in crl_dp for name in point.full_name or []] == ["https://ca.test/crl"]
    aia = ext(leaf, x509.AuthorityInformationAccess).value
    assert isinstance(aia, x509.AuthorityInformationAccess)
    assert {d.access_location.value for d in aia} == {"https://ca.test/ca.crt", "https://ca.test/ocsp"}


def test_leaf_validity_is_relative_to_now(
    ca_keys: dict[str, PrivateKey], ca_certs: dict[str, x509.Certificate]
) -> None:
    now = utcnow()
    leaf = issue(ca_keys["p256"], ca_certs["p256"], spec_for("client", ["a.example.com"], days=30), p256(), now=now)
    assert leaf.not_valid_before_utc == now - dt.timedelta(minutes=5)
    assert leaf.not_valid_after_utc == now + dt.timedelta(days=30)


def test_leaf_not_after_is_capped_at_the_cas(ca_keys: dict[str, PrivateKey]) -> None:
    now = utcnow()
    key = ca_keys["p256"]
    short_ca = build_ca_certificate(key, "short-lived CA", now=now, lifetime=dt.timedelta(days=10))
    leaf = issue(key, short_ca, spec_for("client", ["a.example.com"], days=90), p256(), now=now)
    assert leaf.not_valid_after_utc == short_ca.not_valid_after_utc == now + dt.timedelta(days=10)
    leaf.verify_directly_issued_by(short_ca)


def test_the_serial_number_is_the_one_given(
    ca_keys: dict[str, PrivateKey], ca_certs: dict[str, x509.Certificate]
) -> None:
    serial = 2**158 + 12345
    leaf = issue(ca_keys["p256"], ca_certs["p256"], spec_for("client", ["a.example.com"]), p256(), serial_number=serial)
    assert leaf.serial_number == serial


def test_random_serials_are_positive_159_bit_and_distinct() -> None:
    serials = [random_serial_number() for _ in range(20)]
    assert all(0 < serial < 2**159 for serial in serials)
    assert len(set(serials)) == 20
    assert max(serials).bit_length() > 140  # drawn from the whole range, not a counter


def test_issued_serials_are_distinct(ca_keys: dict[str, PrivateKey], ca_certs: dict[str, x509.Certificate]) -> None:
    key = p256()
    spec = spec_for("client", ["a.example.com"])
    serials = [issue(ca_keys["p256"], ca_certs["p256"], spec, key).serial_number for _ in range(20)]
    assert len(set(serials)) == 20
    assert all(0 < serial < 2**159 for serial in serials)


def test_the_leaf_subject_is_the_specs(ca_keys: dict[str, PrivateKey], ca_certs: dict[str, x509.Certificate]) -> None:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Alice Smith"),
        ]
    )
    email = parse_general_name("alice@example.com")
    spec = LeafSpec(subject, "Alice Smith", (email,), BUILTIN_PROFILES["client"], 30)
    leaf = issue(ca_keys["p256"], ca_certs["p256"], spec, ec.generate_private_key(ec.SECP384R1()))
    assert leaf.subject == subject
    assert ext(leaf, x509.SubjectAlternativeName).value == x509.SubjectAlternativeName([email])
