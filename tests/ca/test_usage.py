"""Key usage follows from the key type and the extended key usage, for built-in and configured profiles alike:
keyEncipherment only for RSA keys of serverAuth certificates, and a timeStamping EKU alone is critical (RFC 3161
2.3). Checked on certificates the authority issues, and by `openssl verify -purpose`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from service.authority import Authority
from service.ca.keys import PrivateKey
from service.ca.profiles import parse_profiles
from service.datadir.build import build_authority
from service.datadir.prepare import prepare
from service.settings import Settings

PROFILES = """
[profiles.codesign]
extended_key_usage = ["codeSigning"]
[profiles.tsa]
extended_key_usage = ["timeStamping"]
[profiles.mail]
extended_key_usage = ["emailProtection", "clientAuth"]
"""
# profile -> (keyEncipherment for an RSA key, EKU critical, the `openssl verify -purpose` it must pass)
EXPECTED = {
    "client": (False, False, "sslclient"),
    "server": (True, False, "sslserver"),
    "peer": (True, False, "sslserver"),
    "codesign": (False, False, "any"),  # OpenSSL 3.0 has no code-signing purpose
    "tsa": (False, True, "timestampsign"),
    "mail": (False, False, "smimesign"),
}
KEYS = {
    "rsa2048": lambda: rsa.generate_private_key(65537, 2048),
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Authority, Path]:
    from tests.conftest import make_settings

    data = tmp_path_factory.mktemp("usage") / "data"
    data.mkdir(mode=0o700)
    (data / "profiles.toml").write_text(PROFILES)
    settings: Settings = make_settings(data)
    prepare(settings)
    authority = build_authority(settings)
    yield authority, data / "ca.pem"  # type: ignore[misc]
    authority.close()


@pytest.mark.parametrize("profile", list(EXPECTED))
@pytest.mark.parametrize("key_type", list(KEYS))
def test_key_usage_follows_key_type_and_extended_key_usage(
    configured: tuple[Authority, Path], profile: str, key_type: str, tmp_path: Path
) -> None:
    authority, ca_file = configured
    key: PrivateKey = KEYS[key_type]()  # type: ignore[assignment]
    issued = authority.issue_for_key(key.public_key(), cn="svc.example.com", sans=["svc.example.com"], profile=profile)
    leaf = issued.certificate
    encipherment, critical, purpose = EXPECTED[profile]
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert usage.value.key_encipherment is (encipherment and key_type == "rsa2048")
    assert not (usage.value.data_encipherment or usage.value.key_agreement or usage.value.content_commitment)
    extended = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert extended.critical is critical
    assert list(extended.value) == list(authority.profiles[profile].extended_key_usage)

    openssl = shutil.which("openssl")
    assert openssl, "openssl is part of the test environment"
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(Encoding.PEM))
    verified = subprocess.run(
        [openssl, "verify", "-purpose", purpose, "-CAfile", str(ca_file), str(tmp_path / "leaf.pem")],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0 and verified.stdout.endswith(": OK\n"), (verified.stdout, verified.stderr)


def test_timestamping_goes_alone() -> None:
    with pytest.raises(ValueError, match="timeStamping must be the only extended key usage"):
        parse_profiles({"profiles": {"tsa": {"extended_key_usage": ["timeStamping", "clientAuth"]}}})
    alone = parse_profiles({"profiles": {"tsa": {"extended_key_usage": ["timeStamping"]}}})["tsa"]
    assert alone.extended_key_usage == (ExtendedKeyUsageOID.TIME_STAMPING,)
