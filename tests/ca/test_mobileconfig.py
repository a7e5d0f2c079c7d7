"""Apple configuration profiles: parsed back with plistlib (payload types, identifiers, the root's bytes, the
identity), and their CMS signature verified by `openssl cms -verify` against the CA, with the negative controls
(another CA, a changed byte, a signer of the wrong purpose)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import plistlib
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from service.ca.issue import build_ca_certificate, build_intermediate_builder
from service.ca.mobileconfig import (
    MEDIA_TYPE,
    Pkcs12Identity,
    ScepIdentity,
    build_identifier_prefix,
    build_profile,
    build_signer_builder,
    sign_profile,
)
from service.ca.names import build_subject
from service.ca.pkcs12 import build_pkcs12
from tests.helpers import ForeignCA, now, p256

PASSWORD = b"correct horse battery"
PREFIX = "example.corp.ca.pocketca"


@dataclass
class CA:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    signer_key: ec.EllipticCurvePrivateKey
    signer: x509.Certificate
    file: Path


@pytest.fixture
def ca(tmp_path: Path) -> CA:
    key = p256()
    certificate = build_ca_certificate(key, "pocketca root CA", now=now(), lifetime=dt.timedelta(days=2))
    signer_key = p256()
    builder = build_signer_builder(
        signer_key.public_key(), certificate, "pocketca profile signer", now=now(), lifetime=dt.timedelta(days=1)
    )
    path = tmp_path / "ca.pem"
    path.write_bytes(certificate.public_bytes(Encoding.PEM))
    return CA(key, certificate, signer_key, builder.sign(key, hashes.SHA256()), path)


def identity(ca: CA, *, legacy: bool = True) -> Pkcs12Identity:
    key = p256()
    leaf = (
        x509.CertificateBuilder()
        .subject_name(build_subject("Alice Example"))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now())
        .not_valid_after(now() + dt.timedelta(days=1))
        .sign(ca.key, hashes.SHA256())
    )
    bundle = build_pkcs12(key, leaf, [ca.certificate], PASSWORD, friendly_name="Alice Example", legacy=legacy)
    return Pkcs12Identity(bundle, "alice.p12")


def scep() -> ScepIdentity:
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Corp"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "Alice Example")])
    return ScepIdentity(
        url="https://ca.corp.example/scep", challenge="one-time-challenge", subject=subject, name="pocketca",
        sans=(x509.RFC822Name("alice@example.com"), x509.DNSName("alice-laptop.corp.example")),
        ca_fingerprint=b"\x01" * 20,
    )


def profile_for(ca: CA, who: Pkcs12Identity | ScepIdentity, invitation_id: str = "inv-1234") -> bytes:
    return build_profile(
        invitation_id=invitation_id, identifier_prefix=PREFIX, organization="Corp", display_name="Alice Example",
        root=ca.certificate, identity=who, description="Your certificate for the intranet",
    )


def verify(path: Path, ca_file: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    argv = ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(path), "-CAfile", str(ca_file), *extra]
    return subprocess.run(argv, capture_output=True, timeout=30, check=False)


def test_the_pkcs12_profile_parses_and_carries_the_root_and_the_identity(ca: CA) -> None:
    who = identity(ca)
    document: dict[str, Any] = plistlib.loads(profile_for(ca, who))
    assert document["PayloadType"] == "Configuration"
    assert document["PayloadIdentifier"] == f"{PREFIX}.invitation.inv-1234"
    assert document["PayloadOrganization"] == "Corp" and document["PayloadDisplayName"] == "Alice Example"
    assert document["PayloadDescription"] == "Your certificate for the intranet"
    root, person = document["PayloadContent"]
    assert root["PayloadType"] == "com.apple.security.root"
    assert root["PayloadContent"] == ca.certificate.public_bytes(Encoding.DER)
    assert root["PayloadIdentifier"] == f"{PREFIX}.invitation.inv-1234.root"
    assert person["PayloadType"] == "com.apple.security.pkcs12"
    assert person["PayloadIdentifier"] == f"{PREFIX}.invitation.inv-1234.identity"
    assert person["PayloadContent"] == who.bundle and person["PayloadCertificateFileName"] == "alice.p12"
    assert "Password" not in person  # the device asks for it at install
    opened = pkcs12.load_pkcs12(person["PayloadContent"], PASSWORD)
    assert opened.cert is not None and opened.key is not None
    uuids = [document["PayloadUUID"], root["PayloadUUID"], person["PayloadUUID"]]
    assert len(set(uuids)) == 3 and all(uuid.UUID(u).version == 5 for u in uuids)
    assert all(u == u.upper() for u in uuids)


def test_identifiers_are_stable_per_invitation_and_differ_between_invitations(ca: CA) -> None:
    def identifiers(document: dict[str, Any]) -> list[tuple[str, str]]:
        return [(p["PayloadIdentifier"], p["PayloadUUID"]) for p in [document, *document["PayloadContent"]]]

    first = plistlib.loads(profile_for(ca, identity(ca)))
    again = plistlib.loads(profile_for(ca, identity(ca)))  # another key and bundle, the same invitation
    other = plistlib.loads(profile_for(ca, identity(ca), invitation_id="inv-5678"))
    assert identifiers(first) == identifiers(again)
    assert not {u for _, u in identifiers(first)} & {u for _, u in identifiers(other)}
    with pytest.raises(ValueError, match="invitation id"):
        profile_for(ca, identity(ca), invitation_id="../etc")


def test_the_scep_profile_asks_the_device_to_make_an_rsa_key(ca: CA) -> None:
    document: dict[str, Any] = plistlib.loads(profile_for(ca, scep()))
    root, person = document["PayloadContent"]
    assert root["PayloadType"] == "com.apple.security.root"
    assert person["PayloadType"] == "com.apple.security.scep"
    assert person["PayloadContent"] == {
        "URL": "https://ca.corp.example/scep",
        "Name": "pocketca",
        "Challenge": "one-time-challenge",
        "Keysize": 2048,
        "Key Type": "RSA",
        "Key Usage": 5,
        "Subject": [[["O", "Corp"]], [["CN", "Alice Example"]]],
        "SubjectAltName": {"rfc822Name": ["alice@example.com"], "dNSName": ["alice-laptop.corp.example"]},
        "CAFingerprint": b"\x01" * 20,
        "Retries": 3,
        "RetryDelay": 10,
    }
    plain = ScepIdentity(url="https://ca/scep", challenge="c", subject=build_subject("Bob"))
    content = plistlib.loads(profile_for(ca, plain))["PayloadContent"][1]["PayloadContent"]
    assert "CAFingerprint" not in content and "Name" not in content and "SubjectAltName" not in content
    with pytest.raises(ValueError, match="IPAddress"):
        bad = ScepIdentity(url="u", challenge="c", subject=build_subject("Bob"),
                           sans=(x509.IPAddress(ipaddress.ip_address("10.0.0.1")),))
        profile_for(ca, bad)


def test_intermediates_travel_as_pkcs1_payloads(ca: CA) -> None:
    key = p256()
    intermediate = build_intermediate_builder(
        key.public_key(), "pocketca issuing CA", ca.certificate, now=now(), lifetime=dt.timedelta(days=1)
    ).sign(ca.key, hashes.SHA256())
    document = plistlib.loads(build_profile(
        invitation_id="inv-1", identifier_prefix=PREFIX, organization="Corp", display_name="Alice",
        root=ca.certificate, intermediates=[intermediate], identity=identity(ca),
    ))
    kinds = [(p["PayloadType"], p["PayloadIdentifier"].rsplit(".", 1)[1]) for p in document["PayloadContent"]]
    assert kinds == [("com.apple.security.root", "root"), ("com.apple.security.pkcs1", "intermediate1"),
                     ("com.apple.security.pkcs12", "identity")]
    assert document["PayloadContent"][1]["PayloadContent"] == intermediate.public_bytes(Encoding.DER)
    assert "PayloadDescription" not in document  # none given: none written


@pytest.mark.parametrize("form", ["pkcs12", "scep"])
def test_openssl_verifies_the_signed_profile_against_the_ca(ca: CA, tmp_path: Path, form: str) -> None:
    profile = profile_for(ca, identity(ca) if form == "pkcs12" else scep())
    signed = tmp_path / "alice.mobileconfig"
    signed.write_bytes(sign_profile(profile, ca.signer, ca.signer_key, [ca.certificate]))
    out = tmp_path / "content.plist"
    result = verify(signed, ca.file, "-out", str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr.decode().strip() == "CMS Verification successful"
    assert out.read_bytes() == profile  # the plist inside is byte for byte what was signed
    assert plistlib.loads(out.read_bytes())["PayloadType"] == "Configuration"
    assert MEDIA_TYPE == "application/x-apple-aspen-config"


def test_another_ca_or_a_changed_byte_fails_verification(ca: CA, tmp_path: Path, foreign_ca: ForeignCA) -> None:
    profile = profile_for(ca, scep())
    signed = sign_profile(profile, ca.signer, ca.signer_key, [ca.certificate])
    path = tmp_path / "p.mobileconfig"
    path.write_bytes(signed)
    foreign = tmp_path / "foreign.pem"
    foreign.write_bytes(foreign_ca.certificate.public_bytes(Encoding.PEM))
    refused = verify(path, foreign)
    assert refused.returncode != 0 and b"self-signed certificate in certificate chain" in refused.stderr

    at = signed.index(b"one-time-challenge")
    path.write_bytes(signed[:at] + b"One" + signed[at + 3:])
    changed = verify(path, ca.file)
    assert changed.returncode != 0 and b"content verify error" in changed.stderr.lower()


@pytest.mark.parametrize(("eku", "default_purpose"), [
    (None, True),
    ([ExtendedKeyUsageOID.EMAIL_PROTECTION], True),
    ([ExtendedKeyUsageOID.SERVER_AUTH], False),
    ([ExtendedKeyUsageOID.CLIENT_AUTH], False),
    ([ExtendedKeyUsageOID.CODE_SIGNING], False),
    ([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE], False),
])
def test_which_signer_eku_openssl_accepts(ca: CA, tmp_path: Path, eku: list[x509.ObjectIdentifier] | None,
                                          default_purpose: bool) -> None:
    """What the module's docstring records: `openssl cms -verify` checks the smimesign purpose; `-purpose any`
    accepts every one of these signers."""
    key = p256()
    builder = (
        x509.CertificateBuilder()
        .subject_name(build_subject("signer"))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now() - dt.timedelta(minutes=1))
        .not_valid_after(now() + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    signer = builder.sign(ca.key, hashes.SHA256())
    path = tmp_path / "p.mobileconfig"
    path.write_bytes(sign_profile(profile_for(ca, scep()), signer, key, [ca.certificate]))
    default = verify(path, ca.file, "-out", "/dev/null")
    assert (default.returncode == 0) is default_purpose, default.stderr.decode()
    if not default_purpose:
        assert b"unsuitable certificate purpose" in default.stderr
    assert verify(path, ca.file, "-out", "/dev/null", "-purpose", "any").returncode == 0


def test_the_signer_certificate(ca: CA) -> None:
    extensions = ca.signer.extensions
    assert extensions.get_extension_for_class(x509.BasicConstraints).critical
    usage = extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    assert list(extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.EMAIL_PROTECTION
    ]
    assert ca.signer.not_valid_after_utc <= ca.certificate.not_valid_after_utc


def test_the_identifier_prefix_reverses_the_host() -> None:
    assert build_identifier_prefix("ca.corp.example") == "example.corp.ca.pocketca"
    assert build_identifier_prefix("localhost") == "localhost.pocketca"
    assert build_identifier_prefix("CA.Corp.Example.") == "example.corp.ca.pocketca"
