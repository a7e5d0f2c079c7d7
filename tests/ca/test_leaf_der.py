"""Leaves from DER templates (service.ca.leaf) are CertificateBuilder's leaves, byte for byte.

For every CA key type, leaf key type and profile: the TBSCertificate and the signatureAlgorithm equal what
`build_leaf_builder` + `FileKeyStore.sign_certificate` make for the same inputs; where the signature is
deterministic (RSA PKCS#1 v1.5, Ed25519) the whole certificate does. The result parses back with cryptography
(and verifies under the CA key) and with `openssl x509`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from service.ca.issue import build_ca_certificate, build_leaf_builder, issuer_id, random_serial_number
from service.ca.keys import KEY_TYPES, PrivateKey, generate_private_key
from service.ca.leaf import is_tbs_certificate, sign_leaf
from service.ca.policy import LeafSpec
from service.ca.profiles import BUILTIN_PROFILES, parse_profiles
from service.ca.subject import check_issued, encode_subject
from service.errors import InvalidRequestError
from service.keys.file_key import FileKeyStore
from tests.hostile import REENCODED, name_of

PUBLIC_URL = "https://ca.example.test:8443/"
LEAF_KEYS = {
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "p521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "rsa2048": lambda: rsa.generate_private_key(65537, 2048),
}
SANS = (
    x509.DNSName("a.example.test"),
    x509.DNSName("*.b.example.test"),
    x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
    x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
    x509.RFC822Name("ops@example.test"),
    x509.UniformResourceIdentifier("spiffe://example.test/svc"),
)
SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example, Inc."),
        x509.NameAttribute(NameOID.COMMON_NAME, "a.example.test"),
    ]
)


# the built-in profiles and configured ones whose usages differ (timeStamping alone: a critical EKU)
PROFILES = parse_profiles(
    {
        "profiles": {
            "tsa": {"extended_key_usage": ["timeStamping"]},
            "codesign": {"extended_key_usage": ["codeSigning"]},
            "mail": {"extended_key_usage": ["emailProtection", "clientAuth"]},
        }
    }
)
# hostile subjects as a CSR may ask for them, re-encoded as policy does (service.ca.subject)
HOSTILE = {what: encode_subject(name_of(attributes)) for what, attributes, _ in REENCODED}
HOSTILE["every kind at once"] = encode_subject(name_of([a for _, attributes, _ in REENCODED for a in attributes]))


@pytest.fixture(scope="module")
def cas() -> dict[str, tuple[PrivateKey, x509.Certificate]]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    out = {}
    for key_type in KEY_TYPES:
        key = generate_private_key(key_type)  # type: ignore[arg-type]
        out[key_type] = (
            key,
            build_ca_certificate(key, f"leaf DER CA {key_type}", now=now, lifetime=dt.timedelta(days=400)),
        )
    return out


@pytest.fixture(scope="module")
def leaf_keys() -> dict[str, CertificatePublicKeyTypes]:
    return {name: make().public_key() for name, make in LEAF_KEYS.items()}


def both(
    ca: tuple[PrivateKey, x509.Certificate],
    public_key: CertificatePublicKeyTypes,
    spec: LeafSpec,
    *,
    serial: int,
    now: dt.datetime,
    with_issuer_id: bool,
) -> tuple[x509.Certificate, x509.Certificate, bytes]:
    key, certificate = ca
    store = FileKeyStore(key)
    ident = issuer_id(certificate) if with_issuer_id else None
    reference = store.sign_certificate(
        build_leaf_builder(
            spec, public_key, certificate, serial_number=serial, now=now, public_url=PUBLIC_URL, issuer_id=ident
        )
    )
    made, der = sign_leaf(
        store,
        spec,
        public_key,
        certificate,
        store.public_key(),
        serial_number=serial,
        now=now,
        public_url=PUBLIC_URL,
        issuer_id=ident,
    )
    return reference, made, der


@pytest.mark.parametrize("ca_type", KEY_TYPES)
@pytest.mark.parametrize("leaf_type", list(LEAF_KEYS))
@pytest.mark.parametrize("profile", list(PROFILES))
def test_template_leaf_is_the_builders_byte_for_byte(
    cas: dict[str, tuple[PrivateKey, x509.Certificate]],
    leaf_keys: dict[str, CertificatePublicKeyTypes],
    ca_type: str,
    leaf_type: str,
    profile: str,
) -> None:
    spec = LeafSpec(SUBJECT, "a.example.test", SANS, PROFILES[profile], 90)
    now = dt.datetime.now(dt.UTC)  # with microseconds: both must drop them the same way
    for serial, with_issuer_id in ((random_serial_number(), True), (0x80, False), (1, True), ((1 << 159) - 1, False)):
        reference, made, der = both(
            cas[ca_type], leaf_keys[leaf_type], spec, serial=serial, now=now, with_issuer_id=with_issuer_id
        )
        assert made.tbs_certificate_bytes == reference.tbs_certificate_bytes
        assert made.signature_algorithm_oid == reference.signature_algorithm_oid
        assert der == made.public_bytes(serialization.Encoding.DER)
        if ca_type.startswith("rsa") or ca_type == "ed25519":  # deterministic signatures: the whole certificate
            assert der == reference.public_bytes(serialization.Encoding.DER)
        made.verify_directly_issued_by(cas[ca_type][1])
        assert made.serial_number == serial
        assert list(made.extensions) == list(reference.extensions)
        assert made.subject == SUBJECT


@pytest.mark.parametrize("ca_type", ["p256", "rsa2048", "ed25519"])
@pytest.mark.parametrize("what", list(HOSTILE))
def test_hostile_subjects_are_the_builders_byte_for_byte_and_load_in_openssl(
    cas: dict[str, tuple[PrivateKey, x509.Certificate]],
    leaf_keys: dict[str, CertificatePublicKeyTypes],
    ca_type: str,
    what: str,
    tmp_path,
) -> None:
    subject, problems = HOSTILE[what]
    assert problems == []
    spec = LeafSpec(subject, "a.example.test", SANS, PROFILES["peer"], 30)
    now = dt.datetime.now(dt.UTC)
    serial = random_serial_number()
    reference, made, der = both(cas[ca_type], leaf_keys["rsa2048"], spec, serial=serial, now=now, with_issuer_id=True)
    assert made.tbs_certificate_bytes == reference.tbs_certificate_bytes
    assert [(a.oid, a.value, a._type) for a in made.subject] == [(a.oid, a.value, a._type) for a in subject]
    (tmp_path / "leaf.der").write_bytes(der)
    loaded = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-in", str(tmp_path / "leaf.der"), "-noout", "-subject"],
        capture_output=True,
        text=True,
    )
    assert loaded.returncode == 0, loaded.stderr


@pytest.mark.parametrize(
    ("attribute", "words"),
    [
        ((NameOID.COMMON_NAME, "oct", x509.name._ASN1Type.OctetString), "commonName is an OCTET STRING"),
        ((NameOID.EMAIL_ADDRESS, "a@example.test", x509.name._ASN1Type.UTF8String), "emailAddress is a UTF8String"),
        ((NameOID.COUNTRY_NAME, "DE", x509.name._ASN1Type.BMPString), "countryName is a BMPString"),
    ],
    ids=["OCTET STRING CN", "UTF8String emailAddress", "BMPString C"],
)
def test_a_leaf_whose_subject_skipped_reencoding_never_leaves(
    cas: dict[str, tuple[PrivateKey, x509.Certificate]],
    leaf_keys: dict[str, CertificatePublicKeyTypes],
    attribute: tuple[x509.ObjectIdentifier, str, x509.name._ASN1Type],
    words: str,
) -> None:
    """The last check in sign_leaf: the signed certificate, parsed back by cryptography, must carry each subject
    attribute in a type RFC 5280 allows. Here a spec that skipped policy's re-encoding is refused."""
    key, certificate = cas["p256"]
    store = FileKeyStore(key)
    spec = LeafSpec(name_of([attribute]), "a.example.test", SANS, PROFILES["server"], 30)
    with pytest.raises(InvalidRequestError, match=words):
        sign_leaf(
            store,
            spec,
            leaf_keys["p256"],
            certificate,
            store.public_key(),
            serial_number=random_serial_number(),
            now=dt.datetime.now(dt.UTC),
            public_url=PUBLIC_URL,
        )


def test_the_parse_back_compares_names_with_what_policy_accepted(
    cas: dict[str, tuple[PrivateKey, x509.Certificate]], leaf_keys: dict[str, CertificatePublicKeyTypes]
) -> None:
    key, certificate = cas["p256"]
    store = FileKeyStore(key)
    spec = LeafSpec(SUBJECT, "a.example.test", SANS, PROFILES["server"], 30)
    now = dt.datetime.now(dt.UTC)
    made = store.sign_certificate(
        build_leaf_builder(spec, leaf_keys["p256"], certificate, serial_number=1, now=now, public_url=PUBLIC_URL)
    )
    check_issued(made, SUBJECT, SANS)  # the control: exactly what was accepted
    with pytest.raises(InvalidRequestError, match="subject alternative names are not the ones policy accepted"):
        check_issued(made, SUBJECT, SANS[:1])
    with pytest.raises(InvalidRequestError, match="its subject is not the one policy accepted"):
        check_issued(made, x509.Name(list(SUBJECT)[:2]), SANS)


def test_validity_is_capped_by_the_issuer_and_years_after_2049_are_generalized_times(
    cas: dict[str, tuple[PrivateKey, x509.Certificate]], leaf_keys: dict[str, CertificatePublicKeyTypes]
) -> None:
    key = generate_private_key("p256")
    now = dt.datetime(2049, 12, 1, 12, 30, 45, 123456, tzinfo=dt.UTC)
    long_ca = build_ca_certificate(key, "long CA", now=now - dt.timedelta(days=1), lifetime=dt.timedelta(days=3650))
    short_ca = build_ca_certificate(key, "short CA", now=now - dt.timedelta(days=1), lifetime=dt.timedelta(days=10))
    spec = LeafSpec(SUBJECT, "a.example.test", SANS[:1], BUILTIN_PROFILES["server"], 365)
    for ca in (long_ca, short_ca):
        reference, made, _ = both((key, ca), leaf_keys["p256"], spec, serial=12345, now=now, with_issuer_id=True)
        assert made.tbs_certificate_bytes == reference.tbs_certificate_bytes
    assert made.not_valid_after_utc == short_ca.not_valid_after_utc


def test_openssl_reads_every_ca_types_leaf(
    cas: dict[str, tuple[PrivateKey, x509.Certificate]], leaf_keys: dict[str, CertificatePublicKeyTypes], tmp_path
) -> None:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is part of the test environment"
    spec = LeafSpec(SUBJECT, "a.example.test", SANS, BUILTIN_PROFILES["peer"], 30)
    for ca_type, ca in cas.items():
        _, made, der = both(
            ca, leaf_keys["p256"], spec, serial=random_serial_number(), now=dt.datetime.now(dt.UTC), with_issuer_id=True
        )
        (tmp_path / "leaf.der").write_bytes(der)
        (tmp_path / "ca.pem").write_bytes(ca[1].public_bytes(serialization.Encoding.PEM))
        text = subprocess.run(
            [openssl, "x509", "-inform", "DER", "-in", str(tmp_path / "leaf.der"), "-noout", "-text"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "DNS:a.example.test" in text and "IP Address:2001:DB8:0:0:0:0:0:1" in text
        assert f"URI:https://ca.example.test:8443/crl/{issuer_id(ca[1])}" in text
        assert "TLS Web Server Authentication, TLS Web Client Authentication" in text
        verified = subprocess.run(
            [
                openssl,
                "verify",
                "-partial_chain",
                "-CAfile",
                str(tmp_path / "ca.pem"),
                "-inform",
                "DER",
                str(tmp_path / "leaf.der"),
            ],
            capture_output=True,
            text=True,
        )
        if verified.returncode != 0:  # older openssl verify has no -inform: go through PEM
            (tmp_path / "leaf.pem").write_bytes(made.public_bytes(serialization.Encoding.PEM))
            verified = subprocess.run(
                [openssl, "verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "leaf.pem")],
                capture_output=True,
                text=True,
            )
        assert verified.returncode == 0, (ca_type, verified.stdout, verified.stderr)


def test_signers_sign_only_tbs_certificates(cas: dict[str, tuple[PrivateKey, x509.Certificate]]) -> None:
    key, certificate = cas["p256"]
    store = FileKeyStore(key)
    assert is_tbs_certificate(certificate.tbs_certificate_bytes)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(certificate.subject)
        .last_update(dt.datetime.now(dt.UTC))
        .next_update(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
        .sign(
            key,
            None
            if isinstance(key, ed25519.Ed25519PrivateKey)
            else __import__("cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256(),
        )
    )
    for not_a_certificate in (crl.tbs_certlist_bytes, b"", b"\x30\x00", b"\x02\x01\x00"):
        assert not is_tbs_certificate(not_a_certificate)
        with pytest.raises(ValueError, match="TBSCertificate"):
            store.sign_tbs_certificate(not_a_certificate)
