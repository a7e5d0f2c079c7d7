"""Making and importing the CA in a data dir: file modes, encryption, and what an import must refuse.

Imported CAs are made by the real `openssl` command line, the way an operator would make them.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.ca.inspect import is_ca_certificate
from service.ca.issue import build_leaf_builder, random_serial_number
from service.ca.keys import KEY_TYPES, KeyType, describe_public_key, public_keys_match
from service.ca.names import build_subject, parse_general_name
from service.ca.policy import LeafSpec
from service.ca.profiles import BUILTIN_PROFILES
from service.datadir.ceremony import DEFAULT_CA_NAME, import_ca, init_ca
from service.datadir.issuers import load_ca
from service.datadir.layout import DataPaths, has_ca
from service.errors import ConfigurationError
from service.keys.file_key import FileKeyStore
from service.settings import Settings
from tests.conftest import make_settings
from tests.helpers import p256

PASSPHRASE = "a passphrase for the CA key"
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command line")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def openssl(directory: Path, *args: str) -> None:
    result = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"openssl {' '.join(args)} failed:\n{result.stderr}"


def openssl_req_x509(directory: Path, key_file: Path, name: str, *extra: str) -> Path:
    """`openssl req -x509`, as in every how-to on making a private CA; `extra` adds `-addext` options."""
    openssl(
        directory,
        "req", "-x509", "-new", "-nodes", "-key", str(key_file), "-sha256", "-days", "1024",
        "-subj", "/CN=Test", "-out", f"{name}.crt", *extra,
    )  # fmt: skip
    return directory / f"{name}.crt"


def openssl_ca(directory: Path, name: str = "rootCA", bits: int = 2048) -> tuple[Path, Path]:
    """`openssl genrsa` + `openssl req -x509`."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl(directory, "genrsa", "-out", f"{name}.key", str(bits))
    return directory / f"{name}.key", openssl_req_x509(directory, directory / f"{name}.key", name)


@pytest.fixture(scope="module")
def openssl_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return openssl_ca(tmp_path_factory.mktemp("openssl-root"))


@pytest.fixture(scope="module")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another `openssl genrsa` key: it matches no certificate here."""
    directory = tmp_path_factory.mktemp("openssl-other")
    openssl(directory, "genrsa", "-out", "other.key", "2048")
    return directory / "other.key"


def issue_one(keystore: FileKeyStore, ca_cert: x509.Certificate) -> x509.Certificate:
    """Proves the loaded CA works: it signs a leaf that verifies against its certificate."""
    spec = LeafSpec(
        build_subject("a.example.com"),
        "a.example.com",
        (parse_general_name("a.example.com"),),
        BUILTIN_PROFILES["client"],
        1,
    )
    builder = build_leaf_builder(
        spec,
        p256().public_key(),
        ca_cert,
        serial_number=random_serial_number(),
        now=dt.datetime.now(dt.UTC),
        public_url="https://ca.test",
    )
    leaf = keystore.sign_certificate(builder)
    leaf.verify_directly_issued_by(ca_cert)
    return leaf


# --- init -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_init_ca_for_each_key_type(settings: Settings, key_type: KeyType) -> None:
    certificate = init_ca(settings, key_type=key_type)
    paths = DataPaths(settings.data_dir)
    assert mode(settings.data_dir) == 0o700
    assert mode(paths.ca_key) == 0o600
    assert paths.ca_key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")

    on_disk = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    assert on_disk == certificate
    assert is_ca_certificate(on_disk)
    assert describe_public_key(on_disk.public_key()) == key_type
    assert on_disk.subject.rfc4514_string() == f"CN={DEFAULT_CA_NAME}"
    on_disk.verify_directly_issued_by(on_disk)
    now = dt.datetime.now(dt.UTC)
    assert on_disk.not_valid_before_utc <= now < on_disk.not_valid_after_utc

    keystore, loaded = load_ca(settings)
    assert loaded == certificate
    assert public_keys_match(keystore.public_key(), certificate.public_key())


def test_init_ca_uses_the_settings_key_type_and_a_given_name(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", key_type="p384")
    certificate = init_ca(settings, common_name="Acme Root")
    assert describe_public_key(certificate.public_key()) == "p384"
    assert certificate.subject.rfc4514_string() == "CN=Acme Root"


def test_init_ca_tightens_an_existing_data_dir(settings: Settings) -> None:
    settings.data_dir.mkdir(mode=0o755)
    settings.data_dir.chmod(0o755)
    init_ca(settings)
    assert mode(settings.data_dir) == 0o700


def test_init_ca_with_a_passphrase_encrypts_the_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    certificate = init_ca(make_settings(data_dir, ca_key_passphrase=PASSPHRASE))
    key_file = DataPaths(data_dir).ca_key
    assert key_file.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert PASSPHRASE.encode() not in key_file.read_bytes()
    assert mode(key_file) == 0o600

    keystore, loaded = load_ca(make_settings(data_dir, ca_key_passphrase=PASSPHRASE))
    assert loaded == certificate
    issue_one(keystore, loaded)

    with pytest.raises(ConfigurationError) as caught:
        load_ca(make_settings(data_dir, ca_key_passphrase="not the passphrase"))
    assert "not the passphrase" not in str(caught.value)
    with pytest.raises(ConfigurationError):
        load_ca(make_settings(data_dir))  # no passphrase at all


def test_init_ca_reads_the_passphrase_file(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    data_dir = tmp_path / "data"
    init_ca(make_settings(data_dir, ca_key_passphrase_file=secret))
    assert DataPaths(data_dir).ca_key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    load_ca(make_settings(data_dir, ca_key_passphrase=PASSPHRASE))  # the newline is not part of it


def test_init_ca_twice_is_refused(settings: Settings) -> None:
    init_ca(settings)
    paths = DataPaths(settings.data_dir)
    key_before, cert_before = paths.ca_key.read_bytes(), paths.ca_cert.read_bytes()
    with pytest.raises(ConfigurationError, match="already exists"):
        init_ca(settings, key_type="ed25519")
    assert paths.ca_key.read_bytes() == key_before
    assert paths.ca_cert.read_bytes() == cert_before


def test_load_ca_without_a_ca(settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="no CA"):
        load_ca(settings)


def test_load_ca_refuses_a_key_that_does_not_match(tmp_path: Path) -> None:
    first, second = make_settings(tmp_path / "one"), make_settings(tmp_path / "two")
    init_ca(first)
    init_ca(second)
    shutil.copy(DataPaths(second.data_dir).ca_key, DataPaths(first.data_dir).ca_key)
    with pytest.raises(ConfigurationError, match="does not match"):
        load_ca(first)


# --- import -----------------------------------------------------------------------------------------


def test_import_an_openssl_made_ca(settings: Settings, openssl_root: tuple[Path, Path]) -> None:
    key_file, cert_file = openssl_root
    openssl_cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    imported = import_ca(settings, key_file, cert_file)
    assert imported == openssl_cert

    paths = DataPaths(settings.data_dir)
    assert mode(settings.data_dir) == 0o700
    assert mode(paths.ca_key) == 0o600
    keystore, loaded = load_ca(settings)
    assert loaded == openssl_cert
    assert loaded.subject.rfc4514_string() == "CN=Test"
    leaf = issue_one(keystore, loaded)
    assert leaf.issuer == openssl_cert.subject


def test_import_with_a_passphrase_stores_the_key_encrypted(tmp_path: Path, openssl_root: tuple[Path, Path]) -> None:
    data_dir = tmp_path / "data"
    import_ca(make_settings(data_dir, ca_key_passphrase=PASSPHRASE), *openssl_root)
    assert DataPaths(data_dir).ca_key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    keystore, certificate = load_ca(make_settings(data_dir, ca_key_passphrase=PASSPHRASE))
    issue_one(keystore, certificate)
    with pytest.raises(ConfigurationError):
        load_ca(make_settings(data_dir, ca_key_passphrase="wrong"))


def test_import_an_encrypted_openssl_ec_key(settings: Settings, tmp_path: Path) -> None:
    directory = tmp_path / "ec"
    directory.mkdir()
    openssl(
        directory,
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-aes256", "-pass", "pass:openssl-secret", "-out", "ec.key",
    )  # fmt: skip
    openssl(
        directory,
        "req", "-x509", "-new", "-key", "ec.key", "-passin", "pass:openssl-secret",
        "-sha256", "-days", "30", "-subj", "/CN=EC Test", "-out", "ec.crt",
    )  # fmt: skip
    assert (directory / "ec.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(ConfigurationError):
        import_ca(settings, directory / "ec.key", directory / "ec.crt")  # no passphrase given
    assert not has_ca(DataPaths(settings.data_dir))
    import_ca(settings, directory / "ec.key", directory / "ec.crt", b"openssl-secret")
    keystore, certificate = load_ca(settings)
    assert describe_public_key(certificate.public_key()) == "p256"
    issue_one(keystore, certificate)


def assert_nothing_imported(settings: Settings) -> None:
    assert not has_ca(DataPaths(settings.data_dir))
    with pytest.raises(ConfigurationError, match="no CA"):
        load_ca(settings)


def test_import_refuses_a_key_that_does_not_match(
    settings: Settings, other_key: Path, openssl_root: tuple[Path, Path]
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        import_ca(settings, other_key, openssl_root[1])
    assert str(caught.value) == "cannot import this CA: the key does not match the certificate"
    assert_nothing_imported(settings)


def test_import_refuses_a_certificate_that_is_not_a_ca(
    settings: Settings, tmp_path: Path, openssl_root: tuple[Path, Path]
) -> None:
    key_file = openssl_root[0]
    cert_file = openssl_req_x509(tmp_path, key_file, "leaf", "-addext", "basicConstraints=critical,CA:FALSE")
    certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    with pytest.raises(ConfigurationError) as caught:
        import_ca(settings, key_file, cert_file)
    assert "not a CA" in str(caught.value) and "does not match" not in str(caught.value)
    assert_nothing_imported(settings)


def test_import_refuses_a_ca_without_key_cert_sign(
    settings: Settings, tmp_path: Path, openssl_root: tuple[Path, Path]
) -> None:
    key_file = openssl_root[0]
    cert_file = openssl_req_x509(tmp_path, key_file, "ku", "-addext", "keyUsage=critical,digitalSignature")
    with pytest.raises(ConfigurationError, match="keyCertSign"):
        import_ca(settings, key_file, cert_file)
    assert_nothing_imported(settings)


def test_import_refuses_an_rsa_1024_ca(settings: Settings, tmp_path: Path) -> None:
    key_file, cert_file = openssl_ca(tmp_path / "weak", "weak", 1024)
    assert is_ca_certificate(x509.load_pem_x509_certificate(cert_file.read_bytes()))
    with pytest.raises(ConfigurationError, match="1024 bits"):
        import_ca(settings, key_file, cert_file)
    assert_nothing_imported(settings)


def test_import_refuses_a_file_that_is_not_a_certificate(settings: Settings, openssl_root: tuple[Path, Path]) -> None:
    key_file, _ = openssl_root
    with pytest.raises(ConfigurationError, match="not a PEM certificate"):
        import_ca(settings, key_file, key_file)
    assert_nothing_imported(settings)


def test_import_refuses_a_der_certificate(settings: Settings, tmp_path: Path, openssl_root: tuple[Path, Path]) -> None:
    der = tmp_path / "rootCA.der"
    der.write_bytes(x509.load_pem_x509_certificate(openssl_root[1].read_bytes()).public_bytes(Encoding.DER))
    with pytest.raises(ConfigurationError):
        import_ca(settings, openssl_root[0], der)
    assert_nothing_imported(settings)


def test_import_refuses_when_a_ca_exists(settings: Settings, openssl_root: tuple[Path, Path]) -> None:
    made = init_ca(settings)
    with pytest.raises(ConfigurationError, match="already exists"):
        import_ca(settings, *openssl_root)
    assert load_ca(settings)[1] == made


def test_import_lists_every_problem(settings: Settings, tmp_path: Path, other_key: Path) -> None:
    openssl(tmp_path, "genrsa", "-out", "weak.key", "1024")
    cert_file = openssl_req_x509(
        tmp_path, tmp_path / "weak.key", "bad", "-addext", "basicConstraints=critical,CA:FALSE"
    )
    with pytest.raises(ConfigurationError) as caught:
        import_ca(settings, other_key, cert_file)
    message = str(caught.value)
    assert "1024 bits" in message and "not a CA" in message and "does not match" in message
    assert_nothing_imported(settings)
