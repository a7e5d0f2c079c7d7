"""The ceremonies that give a data dir its CA: `init` makes a self-signed root, `init --import-key/--import-cert`
takes one made elsewhere (with `--import-chain`, an intermediate under an existing root). An offline root with an
issuing intermediate under it is made by datadir.offline_root."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.authority import utcnow
from service.ca.issue import build_root_builder
from service.ca.keys import KeyType, load_private_key, public_keys_match
from service.datadir.issuers import (
    KeyAccess,
    ca_problems,
    new_ca_key,
    read_certificate,
    read_chain,
    read_file,
    write_issuer_certificates,
)
from service.datadir.layout import DataPaths, ensure_data_dir, exclusive, has_ca
from service.datadir.schema import create_schema
from service.db.session import check_database
from service.errors import CACheckError, CAExistsError, ConfigurationError, FileError
from service.keys.file_key import FileKeyStore
from service.keys.files import write_public_file
from service.settings import Settings

CA_LIFETIME = dt.timedelta(days=3650)
DEFAULT_CA_NAME = "pocketca root CA"


def init_ca(settings: Settings, *, key_type: KeyType | None = None, common_name: str | None = None) -> x509.Certificate:
    paths = ensure_data_dir(settings)
    with exclusive(paths):
        if has_ca(paths):
            raise CAExistsError(paths.root)
        # a passphrase file that cannot be read stops us before the key is made
        keys = KeyAccess.from_settings(settings)
        check_database(settings.sqlalchemy_url)
        certificate = make_ca(keys, paths, key_type or settings.key_type, common_name or DEFAULT_CA_NAME)
        create_schema(settings, certificate)
        return certificate


def make_ca(keys: KeyAccess, paths: DataPaths, key_type: KeyType, common_name: str) -> x509.Certificate:
    store, key = new_ca_key(keys, paths, key_type)
    try:
        builder = build_root_builder(store.public_key(), common_name, now=utcnow(), lifetime=CA_LIFETIME)
        certificate = store.sign_certificate(builder)
    finally:
        store.close()
    if key is not None:
        FileKeyStore.create(paths.ca_key, key, keys.passphrase)
    write_public_file(paths.ca_cert, certificate.public_bytes(Encoding.PEM))
    return certificate


def import_ca(
    settings: Settings,
    key_file: Path,
    cert_file: Path,
    key_passphrase: bytes | None = None,
    chain_file: Path | None = None,
) -> x509.Certificate:
    """Takes a CA made elsewhere (e.g. `openssl req -x509`), after checking it can act as one; with `chain_file`,
    an intermediate under an existing root (the chain: its issuer first, up to the root)."""
    try:
        key = load_private_key(read_file(key_file, "--import-key"), key_passphrase)
    except ConfigurationError as exc:
        raise FileError(key_file, str(exc), what="--import-key") from None
    certificate = read_certificate(cert_file, "--import-cert")
    parents = read_chain(chain_file, "--import-chain") if chain_file is not None else []
    problems = ca_problems(certificate, parents)
    if not public_keys_match(key.public_key(), certificate.public_key()):
        problems.append("the key does not match the certificate")
    if problems:
        raise CACheckError("import", problems)
    paths = ensure_data_dir(settings)
    with exclusive(paths):
        if has_ca(paths):
            raise CAExistsError(paths.root)
        passphrase = settings.passphrase()
        check_database(settings.sqlalchemy_url)  # nothing is written before the database is known good
        FileKeyStore.create(paths.ca_key, key, passphrase)
        write_issuer_certificates(paths.root, certificate, parents)
        create_schema(settings, certificate)
    return certificate
