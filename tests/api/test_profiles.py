"""Operator profiles from <data dir>/profiles.toml: name patterns, key rules, kept subject attributes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from service.authority import Authority
from service.ca.keys import PrivateKey
from service.ca.names import parse_general_name
from service.cli import main
from service.datadir.build import build_authority
from service.datadir.prepare import prepare
from service.errors import ConfigurationError, PolicyError
from service.settings import Settings
from tests.helpers import free_port

PROFILES = """
[profiles.client]
allowed_dns = [".corp.example", "*.svc.example"]
allowed_emails = ["corp.example"]
key_types = ["p256"]
subject_attributes = ["CN", "O"]
max_validity_days = 30

[profiles.build]
extended_key_usage = ["clientAuth", "serverAuth"]
allowed_dns = [".ci.example"]
allowed_ips = ["10.0.0.0/8"]
allowed_uris = ["spiffe://ci.example/"]
key_types = ["p256", "rsa"]
min_rsa_bits = 3072
"""


@pytest.fixture
def shaped(settings: Settings) -> Iterator[Authority]:
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "profiles.toml").write_text(PROFILES)
    prepare(settings)
    authority = build_authority(settings)
    yield authority
    authority.close()


def _csr(key: PrivateKey, cn: str, sans: Sequence[str] = (), extra: Sequence[x509.NameAttribute] = ()) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), *extra])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([parse_general_name(s) for s in sans]), False)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)


def test_narrowed_client_profile(shaped: Authority, settings: Settings) -> None:
    admin = shaped.authenticate_token((settings.data_dir / "admin.token").read_text().strip())
    extra = [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Corp"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops"),
    ]
    issued = shaped.sign_csr(
        _csr(
            ec.generate_private_key(ec.SECP256R1()),
            "api.corp.example",
            ["a.b.corp.example", "x.svc.example", "ops@corp.example"],
            extra,
        ),
        caller=admin,
    )
    assert issued.certificate.subject.rfc4514_string() == "O=Corp,CN=api.corp.example"  # OU dropped
    with pytest.raises(PolicyError) as refused:
        shaped.sign_csr(
            _csr(rsa.generate_private_key(65537, 2048), "evil.com", ["a.b.svc.example", "me@gmail.com"]),
            caller=admin,
            validity_days=31,
        )
    text = " | ".join(refused.value.violations)
    for fragment in ("rsa2048", "'evil.com'", "'a.b.svc.example'", "'me@gmail.com'", "at most 30 days"):
        assert fragment in text


def test_custom_profile(shaped: Authority, settings: Settings) -> None:
    admin = shaped.authenticate_token((settings.data_dir / "admin.token").read_text().strip())
    key = ec.generate_private_key(ec.SECP256R1())
    issued = shaped.sign_csr(
        _csr(key, "runner-7.ci.example", ["10.1.2.3", "spiffe://ci.example/runner/7"]), caller=admin, profile="build"
    )
    eku = issued.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    with pytest.raises(PolicyError) as refused:  # a CN that is a DNS name must be allowed like any DNS SAN
        shaped.sign_csr(
            _csr(rsa.generate_private_key(65537, 2048), "runner-7", ["192.168.1.1"]), caller=admin, profile="build"
        )
    text = " | ".join(refused.value.violations)
    assert "'runner-7'" in text and "'192.168.1.1'" in text and "3072" in text


def test_token_narrows_but_never_widens(shaped: Authority) -> None:
    token = shaped.create_token(scope="issue", profile="build").token
    caller = shaped.authenticate_token(token)
    key = ec.generate_private_key(ec.SECP256R1())
    assert shaped.sign_csr(_csr(key, "runner-8.ci.example", ["10.0.0.8"]), caller=caller).profile == "build"
    with pytest.raises(PolicyError):
        shaped.sign_csr(_csr(key, "api.corp.example"), caller=caller, profile="client")
    enroll = shaped.authenticate_token(shaped.create_token(cn="x.corp.example", sans=["evil.com"]).token)
    with pytest.raises(PolicyError) as refused:  # the token names evil.com, but the profile never allows it
        shaped.sign_csr(_csr(key, "x.corp.example", ["evil.com"]), caller=enroll)
    assert "'evil.com'" in " ".join(refused.value.violations)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[profiles.client\n", "profiles.toml"),
        ("[profiles.client]\nmax_validity_days = 'long'\n", "must be an integer"),
        ("[profiles.client]\nallowed_dns = ['not a name']\n", "allowed_dns"),
        ("[profiles.client]\nextended_key_usage = ['flying']\n", "flying"),
        ("[profiles.new]\nallowed_dns = ['x.example']\n", "extended_key_usage is required"),
        ("[profiles.client]\ncolour = 'blue'\n", "unknown fields"),
        ("[profiles.client]\nmin_rsa_bits = 1024\n", "below 2048"),
        ("[profiles.client]\ndefault_validity_days = 500\n", "default_validity_days"),
        ("[profiles.client]\nallowed_ips = ['10.0.0.1/8']\n", "host bits"),
        ("[other]\n", "unknown top-level"),
    ],
)
def test_bad_profiles_file_stops_start_with_a_clear_error(
    settings: Settings, text: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "profiles.toml").write_text(text)
    with pytest.raises(ConfigurationError) as error:
        prepare(settings)
    assert fragment in str(error.value)
    # free ports of its own: the defaults (8443, 8080) may be the Quick start's service, running beside the suite
    where = ["--data-dir", str(settings.data_dir), "--database-url", settings.sqlalchemy_url]
    assert main(["serve", *where, "--port", str(free_port()), "--http-port", str(free_port())]) == 2
    assert fragment in capsys.readouterr().err
