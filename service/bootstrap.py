"""The data dir: the CA (made or imported), the schema, the bootstrap admin token, the service's TLS certificate.

`prepare` runs once before any worker starts, under an exclusive file lock, so two `pocketca serve`
started at once do not both make a CA or both migrate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from service.authority import Authority, LocalCaller, utcnow
from service.authority.audit import Auditor
from service.authority.tokens import TokenManager
from service.ca.inspect import get_sans, is_ca_certificate
from service.ca.issue import build_ca_certificate
from service.ca.keys import (
    KeyType,
    dump_private_key,
    generate_private_key,
    key_violations,
    load_private_key,
    public_keys_match,
)
from service.ca.names import format_general_name, parse_general_name
from service.ca.profiles import BUILTIN_PROFILES, Profile, parse_profiles
from service.db import migrate
from service.db.session import Database, check_database
from service.errors import ConfigurationError
from service.keystore import FileKeyStore, write_private_file, write_public_file
from service.settings import Settings

log = logging.getLogger("pocketca.bootstrap")
CA_LIFETIME = dt.timedelta(days=3650)
SERVER_CERT_DAYS = 90
DEFAULT_CA_NAME = "pocketca root CA"


@dataclass(frozen=True)
class DataPaths:
    root: Path

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.pem"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "server.pem"  # leaf first, then the CA

    @property
    def admin_token(self) -> Path:
        return self.root / "admin.token"

    @property
    def profiles(self) -> Path:
        return self.root / "profiles.toml"

    @property
    def urls(self) -> Path:
        return self.root / "urls.json"  # what `serve` writes into certificates, for local `issue`

    @property
    def lock(self) -> Path:
        return self.root / ".lock"


@dataclass(frozen=True)
class Prepared:
    paths: DataPaths
    admin_token: str | None  # set only on the run that made it, to be printed once
    server_certificate_issued: bool


def ensure_data_dir(settings: Settings) -> DataPaths:
    root = settings.data_dir
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    root.chmod(0o700)
    return DataPaths(root)


@contextlib.contextmanager
def exclusive(paths: DataPaths) -> Iterator[None]:
    with open(paths.lock, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- the CA -----------------------------------------------------------------------------------------


def has_ca(paths: DataPaths) -> bool:
    return paths.ca_key.exists() and paths.ca_cert.exists()


def init_ca(settings: Settings, *, key_type: KeyType | None = None, common_name: str | None = None) -> x509.Certificate:
    paths = ensure_data_dir(settings)
    with exclusive(paths):
        if has_ca(paths):
            raise ConfigurationError(f"a CA already exists in {paths.root}")
        settings.passphrase()  # a passphrase file that cannot be read stops us before the key is made
        check_database(settings.sqlalchemy_url)
        return _make_ca(settings, paths, key_type or settings.key_type, common_name or DEFAULT_CA_NAME)


def _make_ca(settings: Settings, paths: DataPaths, key_type: KeyType, common_name: str) -> x509.Certificate:
    key = generate_private_key(key_type)
    certificate = build_ca_certificate(key, common_name, now=utcnow(), lifetime=CA_LIFETIME)
    FileKeyStore.create(paths.ca_key, key, settings.passphrase())
    write_public_file(paths.ca_cert, certificate.public_bytes(Encoding.PEM))
    return certificate


def import_ca(
    settings: Settings, key_file: Path, cert_file: Path, key_passphrase: bytes | None = None
) -> x509.Certificate:
    """Takes a CA made elsewhere (e.g. `openssl req -x509`), after checking it can act as one."""
    try:
        key = load_private_key(_read(key_file, "--import-key"), key_passphrase)
    except ConfigurationError as exc:
        raise ConfigurationError(f"--import-key {key_file}: {exc}") from None
    try:
        certificate = x509.load_pem_x509_certificate(_read(cert_file, "--import-cert"))
    except ValueError:
        raise ConfigurationError(f"--import-cert {cert_file} is not a PEM certificate") from None
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
    if not public_keys_match(key.public_key(), certificate.public_key()):
        problems.append("the key does not match the certificate")
    if problems:
        raise ConfigurationError("cannot import this CA: " + "; ".join(problems))
    paths = ensure_data_dir(settings)
    with exclusive(paths):
        if has_ca(paths):
            raise ConfigurationError(f"a CA already exists in {paths.root}")
        passphrase = settings.passphrase()
        check_database(settings.sqlalchemy_url)
        FileKeyStore.create(paths.ca_key, key, passphrase)
        write_public_file(paths.ca_cert, certificate.public_bytes(Encoding.PEM))
    return certificate


def load_ca(settings: Settings) -> tuple[FileKeyStore, x509.Certificate]:
    paths = DataPaths(settings.data_dir)
    if not has_ca(paths):
        raise ConfigurationError(f"no CA in {paths.root}: run `pocketca init` or `pocketca serve`")
    try:
        keystore = FileKeyStore.open(paths.ca_key, settings.passphrase())
    except ConfigurationError as exc:
        hint = "" if settings.passphrase() else " (is it encrypted? set POCKETCA_CA_KEY_PASSPHRASE_FILE)"
        raise ConfigurationError(f"{paths.ca_key}: {exc}{hint}") from None
    try:
        certificate = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    except ValueError:
        raise ConfigurationError(f"{paths.ca_cert} is not a PEM certificate") from None
    if not public_keys_match(keystore.public_key(), certificate.public_key()):
        raise ConfigurationError(f"the CA key {paths.ca_key} does not match the CA certificate {paths.ca_cert}")
    return keystore, certificate


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{what} {path}: {exc.strerror}") from None


def load_profiles(paths: DataPaths) -> dict[str, Profile]:
    """The built-in profiles, extended or narrowed by `<data dir>/profiles.toml` when it exists."""
    if not paths.profiles.exists():
        return dict(BUILTIN_PROFILES)
    try:
        return parse_profiles(tomllib.loads(paths.profiles.read_text()))
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigurationError(f"{paths.profiles}: {exc}") from None


def build_token_manager(settings: Settings) -> TokenManager:
    """Tokens need the database and the profiles, never the CA key (`pocketca token ...` does not decrypt it)."""
    paths = DataPaths(settings.data_dir)
    if not has_ca(paths):
        raise ConfigurationError(f"no CA in {paths.root}: run `pocketca init` or `pocketca serve`")
    db = Database(settings.sqlalchemy_url)
    return TokenManager(db, Auditor(db, utcnow), load_profiles(paths), utcnow)


# settings `serve` records in the data dir, so that local `pocketca issue` writes the same URLs
RECORDED_URLS = ("public_url", "publication_url")


def record_urls(settings: Settings, paths: DataPaths) -> None:
    urls = {name: getattr(settings, name) for name in RECORDED_URLS if name in Settings.model_fields}
    write_public_file(paths.urls, (json.dumps(urls, indent=2) + "\n").encode())


def with_recorded_urls(settings: Settings) -> Settings:
    """The URLs `serve` last used, for those not given to this command by flag or environment."""
    path = DataPaths(settings.data_dir).urls
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        return settings
    update = {
        name: value
        for name, value in recorded.items()
        if name in RECORDED_URLS and name in Settings.model_fields and name not in settings.model_fields_set
    }
    return settings.model_copy(update=update) if update else settings


def build_authority(settings: Settings) -> Authority:
    keystore, certificate = load_ca(settings)
    profiles = load_profiles(DataPaths(settings.data_dir))
    return Authority(
        Database(settings.sqlalchemy_url),
        keystore,
        certificate,
        public_url=settings.public_url,
        publication_url=settings.publication_url,
        profiles=profiles,
        issue_rate_per_minute=settings.issue_rate_per_minute,
    )


# --- everything `serve` needs -----------------------------------------------------------------------


def prepare(settings: Settings) -> Prepared:
    """Idempotent: makes what is missing, renews the server certificate when due, and touches nothing else."""
    paths = ensure_data_dir(settings)
    with exclusive(paths):
        settings.passphrase()
        check_database(settings.sqlalchemy_url)  # before a CA key is made for a database that cannot be used
        if not has_ca(paths):
            _make_ca(settings, paths, settings.key_type, DEFAULT_CA_NAME)
        record_urls(settings, paths)
        authority = build_authority(settings)
        try:
            with authority.db.lock("bootstrap"):  # one replica at a time: schema and admin token made once
                migrate.upgrade(authority.db)
                token = _ensure_admin_token(authority, paths)
            issued = _ensure_server_certificate(authority, paths, settings.server_names)
            authority.crls.refresh(wait=True)  # the first GET /crl never waits for a build
        finally:
            authority.close()
    return Prepared(paths=paths, admin_token=token, server_certificate_issued=issued)


def _ensure_admin_token(authority: Authority, paths: DataPaths) -> str | None:
    if authority.has_admin_token():
        return None
    new = authority.create_token(scope="admin", caller=LocalCaller("serve"))
    write_private_file(paths.admin_token, (new.token + "\n").encode())
    return new.token


def server_certificate_due(certificate: x509.Certificate, names: list[str], now: dt.datetime) -> bool:
    """Due past two thirds of its life, or when the configured names changed."""
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now >= start + (end - start) * 2 / 3:
        return True
    try:
        wanted = {format_general_name(parse_general_name(name)) for name in names}
    except ValueError as exc:
        raise ConfigurationError(f"POCKETCA_SERVER_NAMES: {exc}") from None
    return set(get_sans(certificate)) != wanted


def _ensure_server_certificate(authority: Authority, paths: DataPaths, names: list[str]) -> bool:
    if paths.server_cert.exists() and paths.server_key.exists():
        current = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
        if not server_certificate_due(current, names, authority.clock()):
            return False
    key = ec.generate_private_key(ec.SECP256R1())
    issued = authority.issue_for_key(
        key.public_key(),
        cn=names[0],
        sans=names,
        profile="server",
        validity_days=SERVER_CERT_DAYS,
        caller=LocalCaller("serve"),
    )
    write_private_file(paths.server_key, dump_private_key(key))
    chain = [issued.certificate, *authority.chain]
    write_public_file(paths.server_cert, b"".join(c.public_bytes(Encoding.PEM) for c in chain))
    return True


class ServerCertificateKeeper:
    """A daemon thread per worker that re-issues the service's own TLS certificate while it runs, at two thirds
    of its life (as `serve` does at start). The file lock lets one worker re-issue; the others find it fresh.
    Each worker's TLS layer then loads the new files into its live context (tls.CertificateReloader)."""

    def __init__(self, authority: Authority, paths: DataPaths, names: list[str], *, interval: float = 2.0) -> None:
        self.authority = authority
        self.paths = paths
        self.names = names
        self.interval = interval
        self._seen: tuple[int, x509.Certificate | None] = (-1, None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pocketca-server-cert", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def due(self) -> bool:
        try:
            stamp = self.paths.server_cert.stat().st_mtime_ns
            if stamp != self._seen[0]:  # parsed once per change of the file, not every look
                self._seen = (stamp, x509.load_pem_x509_certificate(self.paths.server_cert.read_bytes()))
        except (OSError, ValueError):
            return True
        certificate = self._seen[1]
        return certificate is None or server_certificate_due(certificate, self.names, self.authority.clock())

    def renew_if_due(self) -> bool:
        if not self.due():
            return False
        with exclusive(self.paths):
            issued = _ensure_server_certificate(self.authority, self.paths, self.names)
        if issued:
            log.info("server certificate re-issued")
        return issued

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.renew_if_due()
            except Exception:  # keep serving the current certificate; the next look tries again
                log.exception("server certificate renewal failed")
