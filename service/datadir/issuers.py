"""A data dir's issuers: the current issuing CA and those a rotation retired, each a key store (a key file, or
an object in a PKCS#11 token) with its certificate and the chain up to its root; and the checks a CA made
elsewhere passes before it may issue here."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from service.authority import utcnow
from service.authority.values import Issuer
from service.ca.inspect import is_ca_certificate
from service.ca.issue import issuer_id
from service.ca.keys import KeyType, PrivateKey, generate_private_key, key_violations, public_keys_match
from service.datadir.layout import DataPaths, has_ca, load_parents
from service.db import certificates as certificate_rows
from service.db.session import Database
from service.errors import ConfigurationError, FileError, NoCAError, SettingError
from service.keys import KeyStore
from service.keys.file_key import FileKeyStore
from service.keys.files import write_public_file
from service.settings import Settings

if TYPE_CHECKING:
    from service.keys.pkcs11_key import Pkcs11KeyStore


@dataclass(frozen=True)
class KeyAccess:
    """What opens a data dir's CA keys, read from the settings once (a passphrase file is read here, a token's
    PIN only when its session opens): the passphrase of the key files, and the PKCS#11 key URI."""

    passphrase: bytes | None = field(repr=False)
    token_uri: str | None = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyAccess:
        uri = settings.ca_key_uri.get_secret_value() if settings.ca_key_uri is not None else None
        return cls(settings.passphrase(), uri)


def token_store(
    keys: KeyAccess, *, create: KeyType | None = None, marker: Path | None = None, label: str | None = None
) -> Pkcs11KeyStore:
    """A CA key in the PKCS#11 token POCKETCA_CA_KEY_URI names (made there when `create` says so). The module,
    token and PIN come from the setting; the key object from `marker` (a data dir's ca.key.pkcs11, which a
    rotation points at a new object) or `label`, else from the setting."""
    from service.keys.pkcs11_key import Pkcs11KeyStore
    from service.keys.pkcs11_uri import parse_pkcs11_uri

    if keys.token_uri is None:
        raise ConfigurationError("the CA key is in a PKCS#11 token: set POCKETCA_CA_KEY_URI (pkcs11:...)")
    try:
        uri = parse_pkcs11_uri(keys.token_uri)
        if marker is not None:
            named = parse_pkcs11_uri(marker.read_text().strip())
            uri = dataclasses.replace(uri, object=named.object, id=named.id)
    except ValueError as exc:
        raise SettingError("POCKETCA_CA_KEY_URI", str(exc)) from None
    if label is not None:
        uri = dataclasses.replace(uri, object=label, id=None)
    return Pkcs11KeyStore(uri, create=create)


def new_ca_key(keys: KeyAccess, paths: DataPaths, key_type: KeyType) -> tuple[KeyStore, PrivateKey | None]:
    """The new CA's key store: in the token when POCKETCA_CA_KEY_URI is set (made there, or the one found),
    else a new key for the data dir (returned too, to be written once the certificate is made)."""
    if keys.token_uri is not None:
        store = token_store(keys, create=key_type)
        write_public_file(paths.ca_key_in_token, (store.uri.redacted() + "\n").encode())
        return store, None
    key = generate_private_key(key_type)
    return FileKeyStore(key), key


def load_ca(settings: Settings, keys: KeyAccess | None = None) -> tuple[KeyStore, x509.Certificate]:
    """The current issuer's key store and certificate; `keys` read from `settings` when not given."""
    paths = DataPaths(settings.data_dir)
    if not has_ca(paths):
        raise NoCAError(paths.root)
    return load_issuer_files(paths.root, keys or KeyAccess.from_settings(settings))


def load_issuer_files(directory: Path, keys: KeyAccess) -> tuple[KeyStore, x509.Certificate]:
    """An issuer's key store (a key file, or the token object its ca.key.pkcs11 names) and certificate."""
    marker = directory / "ca.key.pkcs11"
    if not (directory / "ca.key").exists() and marker.exists():
        store = token_store(keys, marker=marker)
        certificate = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        if not public_keys_match(store.public_key(), certificate.public_key()):
            store.close()
            raise ConfigurationError(f"the key in the PKCS#11 token does not match the CA certificate in {directory}")
        return store, certificate
    key_file, cert_file = directory / "ca.key", directory / "ca.pem"
    try:
        keystore = FileKeyStore.open(key_file, keys.passphrase)
    except ConfigurationError as exc:
        hint = "" if keys.passphrase else " (is it encrypted? set POCKETCA_CA_KEY_PASSPHRASE_FILE)"
        raise FileError(key_file, f"{exc}{hint}") from None
    certificate = read_certificate(cert_file, "the CA certificate")
    if not public_keys_match(keystore.public_key(), certificate.public_key()):
        raise ConfigurationError(f"the CA key {key_file} does not match the CA certificate {cert_file}")
    return keystore, certificate


def load_retired(settings: Settings, db: Database, now: dt.datetime, keys: KeyAccess | None = None) -> list[Issuer]:
    """The retired issuers that still answer: those with a certificate not yet expired."""
    found = []
    for directory in DataPaths(settings.data_dir).retired():
        last = certificate_rows.latest_expiry(db, directory.name)
        if last is not None and last > now:
            keys = keys or KeyAccess.from_settings(settings)
            keystore, certificate = load_issuer_files(directory, keys)
            found.append(Issuer(issuer_id(certificate), certificate, keystore, tuple(load_parents(directory))))
    return found


def read_certificate(path: Path, what: str = "certificate") -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(read_file(path, what))
    except ValueError:
        raise ConfigurationError(f"{what} {path} is not a PEM certificate") from None


def read_chain(path: Path, what: str = "chain") -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(read_file(path, what))
    except ValueError:
        raise ConfigurationError(f"{what} {path} holds no PEM certificates") from None


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FileError(path, str(exc.strerror), what=what) from None


def ca_problems(certificate: x509.Certificate, parents: list[x509.Certificate]) -> list[str]:
    """What stops `certificate` (with its chain up to a root) from issuing."""
    problems = key_violations(certificate.public_key())
    if not is_ca_certificate(certificate):
        problems.append("the certificate is not a CA (basicConstraints CA:TRUE is missing)")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.key_cert_sign:
            problems.append("the certificate's keyUsage does not allow keyCertSign")
    except x509.ExtensionNotFound:
        pass
    if certificate.not_valid_after_utc <= utcnow():
        problems.append("the certificate has expired")
    child = certificate
    for parent in parents:
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            problems.append(f"{child.subject.rfc4514_string()} is not signed by {parent.subject.rfc4514_string()}")
            break
        if not is_ca_certificate(parent):
            problems.append(f"{parent.subject.rfc4514_string()} in the chain is not a CA")
        if parent.not_valid_after_utc <= utcnow():
            problems.append(f"{parent.subject.rfc4514_string()} in the chain has expired")
        child = parent
    if parents and child.issuer != child.subject:
        problems.append("the chain does not end at a self-signed root")
    return problems


def write_issuer_certificates(directory: Path, certificate: x509.Certificate, parents: list[x509.Certificate]) -> None:
    write_public_file(directory / "ca.pem", certificate.public_bytes(Encoding.PEM))
    if parents:
        write_public_file(directory / "chain.pem", b"".join(c.public_bytes(Encoding.PEM) for c in parents))
    else:
        (directory / "chain.pem").unlink(missing_ok=True)
