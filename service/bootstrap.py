"""The data dir: the CA (made or imported), the schema, the bootstrap admin token, the service's TLS certificate.

`prepare` runs once before any worker starts, under an exclusive file lock, so two `pocketca serve`
started at once do not both make a CA or both migrate.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import logging
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from service.authority import Authority, LocalCaller, utcnow
from service.authority.audit import Auditor
from service.authority.rootcrls import RootCRLs
from service.authority.tokens import TokenManager
from service.authority.values import Issuer
from service.ca.constraints import ConstraintSpec, build_name_constraints, name_constraints_of, violations_of
from service.ca.crl import build_crl
from service.ca.inspect import format_serial, get_sans, is_ca_certificate
from service.ca.issue import Signer, build_ca_certificate, build_intermediate_builder, build_root_builder, issuer_id
from service.ca.keys import (
    KeyType,
    PrivateKey,
    dump_private_key,
    generate_private_key,
    key_violations,
    load_private_key,
    public_keys_match,
    signature_hash,
)
from service.ca.names import format_general_name, get_common_name, parse_general_name
from service.ca.profiles import BUILTIN_PROFILES, Profile, parse_profiles
from service.db import migrate
from service.db.repositories import CertificateRepository
from service.db.session import Database, check_database
from service.errors import ConfigurationError
from service.keystore import FileKeyStore, write_private_file, write_public_file
from service.settings import Settings

log = logging.getLogger("pocketca.bootstrap")

if TYPE_CHECKING:
    from service.hsm import Pkcs11KeyStore

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
    def ca_key_in_token(self) -> Path:
        return self.root / "ca.key.pkcs11"  # instead of ca.key: the key is in a token (its URI without the PIN)

    @property
    def ca_chain(self) -> Path:
        return self.root / "chain.pem"  # the issuing CA's parents, its issuer first, up to the root

    @property
    def issuers(self) -> Path:
        return self.root / "issuers"  # issuers/<issuer id>/{ca.key,ca.pem,chain.pem}: retired by a rotation

    @property
    def pending(self) -> Path:
        return self.root / "pending"  # pending/{ca.key,ca.csr}: a rotation waiting for an external root

    def retired(self) -> list[Path]:
        return sorted(p for p in self.issuers.iterdir() if (p / "ca.pem").exists()) if self.issuers.is_dir() else []

    def trust_pem(self) -> bytes:
        """The CAs whose certificates this service accepts from clients: each of its issuers, current and retired,
        and not their roots (a corporate root also signs certificates that are none of ours)."""
        files = [self.ca_cert, *(directory / "ca.pem" for directory in self.retired())]
        return b"".join(f.read_bytes() for f in files if f.exists())

    @property
    def root_crls(self) -> Path:
        return self.root / "root-crls"  # root-crls/<root id>.crl: each offline root's newest CRL (`ca crl`)

    def root_crl(self, root_id: str) -> Path:
        return self.root_crls / f"{root_id}.crl"

    def roots(self) -> dict[str, x509.Certificate]:
        """The self-signed roots the chains of the current and retired issuers end at, by issuer id."""
        found = {}
        for directory in (self.root, *self.retired()):
            parents = load_parents(directory)
            if parents and parents[-1].issuer == parents[-1].subject:
                found[issuer_id(parents[-1])] = parents[-1]
        return found

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
    if settings.ca_key_uri is not None:  # before anything is made: a CA key URI without the hsm extra stops here
        from service.hsm import require_pkcs11

        require_pkcs11()
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
    return (paths.ca_key.exists() or paths.ca_key_in_token.exists()) and paths.ca_cert.exists()


def _token_store(
    settings: Settings, *, create: KeyType | None = None, marker: Path | None = None, label: str | None = None
) -> Pkcs11KeyStore:
    """A CA key in the PKCS#11 token POCKETCA_CA_KEY_URI names (made there when `create` says so). The module,
    token and PIN come from the setting; the key object from `marker` (a data dir's ca.key.pkcs11, which a
    rotation points at a new object) or `label`, else from the setting."""
    from service.hsm import Pkcs11KeyStore, parse_pkcs11_uri

    if settings.ca_key_uri is None:
        raise ConfigurationError("the CA key is in a PKCS#11 token: set POCKETCA_CA_KEY_URI (pkcs11:...)")
    try:
        uri = parse_pkcs11_uri(settings.ca_key_uri.get_secret_value())
        if marker is not None:
            named = parse_pkcs11_uri(marker.read_text().strip())
            uri = dataclasses.replace(uri, object=named.object, id=named.id)
    except ValueError as exc:
        raise ConfigurationError(f"POCKETCA_CA_KEY_URI: {exc}") from None
    if label is not None:
        uri = dataclasses.replace(uri, object=label, id=None)
    return Pkcs11KeyStore(uri, create=create)


def _new_ca_key(settings: Settings, paths: DataPaths, key_type: KeyType) -> tuple[Signer, PrivateKey | None]:
    """The new CA's key store: in the token when POCKETCA_CA_KEY_URI is set (made there, or the one found),
    else a new key for the data dir (returned too, to be written once the certificate is made)."""
    if settings.ca_key_uri is not None:
        store = _token_store(settings, create=key_type)
        write_public_file(paths.ca_key_in_token, (store.uri.redacted() + "\n").encode())
        return store, None
    key = generate_private_key(key_type)
    return FileKeyStore(key), key


def init_ca(settings: Settings, *, key_type: KeyType | None = None, common_name: str | None = None) -> x509.Certificate:
    paths = ensure_data_dir(settings)
    with exclusive(paths):
        if has_ca(paths):
            raise ConfigurationError(f"a CA already exists in {paths.root}")
        settings.passphrase()  # a passphrase file that cannot be read stops us before the key is made
        check_database(settings.sqlalchemy_url)
        certificate = _make_ca(settings, paths, key_type or settings.key_type, common_name or DEFAULT_CA_NAME)
        create_schema(settings)
        return certificate


def create_schema(settings: Settings) -> None:
    """The database at the newest schema, as `serve` leaves it: a data dir that `init` made serves every local
    command (`issue`, `token create`, ...) before the first `serve`. The admin token is still made by `serve`."""
    db = Database(settings.sqlalchemy_url)
    try:
        with db.lock("bootstrap"):
            migrate.upgrade(db)
    finally:
        db.dispose()


def _make_ca(settings: Settings, paths: DataPaths, key_type: KeyType, common_name: str) -> x509.Certificate:
    store, key = _new_ca_key(settings, paths, key_type)
    try:
        builder = build_root_builder(store.public_key(), common_name, now=utcnow(), lifetime=CA_LIFETIME)
        certificate = store.sign_certificate(builder)
    finally:
        _close(store)
    if key is not None:
        FileKeyStore.create(paths.ca_key, key, settings.passphrase())
    write_public_file(paths.ca_cert, certificate.public_bytes(Encoding.PEM))
    return certificate


def _close(store: Signer) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


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
        key = load_private_key(_read(key_file, "--import-key"), key_passphrase)
    except ConfigurationError as exc:
        raise ConfigurationError(f"--import-key {key_file}: {exc}") from None
    certificate = _read_certificate(cert_file, "--import-cert")
    parents = _read_chain(chain_file, "--import-chain") if chain_file is not None else []
    problems = _ca_problems(certificate, parents)
    if not public_keys_match(key.public_key(), certificate.public_key()):
        problems.append("the key does not match the certificate")
    if problems:
        raise ConfigurationError("cannot import this CA: " + "; ".join(problems))
    paths = ensure_data_dir(settings)
    with exclusive(paths):
        if has_ca(paths):
            raise ConfigurationError(f"a CA already exists in {paths.root}")
        passphrase = settings.passphrase()
        check_database(settings.sqlalchemy_url)  # nothing is written before the database is known good
        FileKeyStore.create(paths.ca_key, key, passphrase)
        _write_issuer_certificates(paths.root, certificate, parents)
        create_schema(settings)
    return certificate


def _read_certificate(path: Path, what: str = "certificate") -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_read(path, what))
    except ValueError:
        raise ConfigurationError(f"{what} {path} is not a PEM certificate") from None


def _read_chain(path: Path, what: str = "chain") -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(_read(path, what))
    except ValueError:
        raise ConfigurationError(f"{what} {path} holds no PEM certificates") from None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{what} {path}: {exc.strerror}") from None


def _ca_problems(certificate: x509.Certificate, parents: list[x509.Certificate]) -> list[str]:
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


def _write_issuer_certificates(directory: Path, certificate: x509.Certificate, parents: list[x509.Certificate]) -> None:
    write_public_file(directory / "ca.pem", certificate.public_bytes(Encoding.PEM))
    if parents:
        write_public_file(directory / "chain.pem", b"".join(c.public_bytes(Encoding.PEM) for c in parents))
    else:
        (directory / "chain.pem").unlink(missing_ok=True)


def load_ca(settings: Settings) -> tuple[Signer, x509.Certificate]:
    paths = DataPaths(settings.data_dir)
    if not has_ca(paths):
        raise ConfigurationError(f"no CA in {paths.root}: run `pocketca init` or `pocketca serve`")
    return _load_issuer_files(paths.root, settings)


def _load_issuer_files(directory: Path, settings: Settings) -> tuple[Signer, x509.Certificate]:
    """An issuer's key store (a key file, or the token object its ca.key.pkcs11 names) and certificate."""
    marker = directory / "ca.key.pkcs11"
    if not (directory / "ca.key").exists() and marker.exists():
        store = _token_store(settings, marker=marker)
        certificate = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        if not public_keys_match(store.public_key(), certificate.public_key()):
            store.close()
            raise ConfigurationError(f"the key in the PKCS#11 token does not match the CA certificate in {directory}")
        return store, certificate
    key_file, cert_file = directory / "ca.key", directory / "ca.pem"
    try:
        keystore = FileKeyStore.open(key_file, settings.passphrase())
    except ConfigurationError as exc:
        hint = "" if settings.passphrase() else " (is it encrypted? set POCKETCA_CA_KEY_PASSPHRASE_FILE)"
        raise ConfigurationError(f"{key_file}: {exc}{hint}") from None
    certificate = _read_certificate(cert_file, "the CA certificate")
    if not public_keys_match(keystore.public_key(), certificate.public_key()):
        raise ConfigurationError(f"the CA key {key_file} does not match the CA certificate {cert_file}")
    return keystore, certificate


def load_parents(directory: Path) -> list[x509.Certificate]:
    chain = directory / "chain.pem"
    return x509.load_pem_x509_certificates(chain.read_bytes()) if chain.exists() else []


def load_retired(settings: Settings, db: Database, now: dt.datetime) -> list[Issuer]:
    """The retired issuers that still answer: those with a certificate not yet expired."""
    found = []
    for directory in DataPaths(settings.data_dir).retired():
        with db.reader() as session:
            last = CertificateRepository(session).latest_expiry(directory.name)
        if last is not None and last > now:
            keystore, certificate = _load_issuer_files(directory, settings)
            found.append(Issuer(issuer_id(certificate), certificate, keystore, tuple(load_parents(directory))))
    return found


# --- an offline root and an issuing intermediate --------------------------------------------------------

MIN_ROOT_PASSPHRASE = 8
ROOT_LIFETIME = dt.timedelta(days=7300)
ROOT_CRL_LIFETIME = dt.timedelta(days=90)  # `ca crl --next-update` by default
INTERMEDIATE_LIFETIME = dt.timedelta(days=1825)


def init_intermediate(
    settings: Settings,
    root_out: Path,
    root_passphrase: bytes,
    *,
    key_type: KeyType | None = None,
    common_name: str | None = None,
    constraints: ConstraintSpec | None = None,
    path_length: int | None = 0,
) -> x509.Certificate:
    """A root whose key goes only to `root_out` (encrypted with `root_passphrase`, next to its certificate), and an
    issuing intermediate it signs, which is the CA this data dir serves with. The root is never needed to serve."""
    if len(root_passphrase) < MIN_ROOT_PASSPHRASE:
        raise ConfigurationError(f"the root passphrase must be at least {MIN_ROOT_PASSPHRASE} characters")
    try:
        name_constraints = build_name_constraints(constraints or ConstraintSpec())
    except ValueError as exc:
        raise ConfigurationError(f"name constraints: {exc}") from None
    if name_constraints is not None:  # the service's own certificate must be possible under them
        try:
            own = [parse_general_name(name) for name in settings.server_names]
        except ValueError as exc:
            raise ConfigurationError(f"POCKETCA_SERVER_NAMES: {exc}") from None
        outside = violations_of(own, name_constraints, "the new intermediate")
        if outside:
            raise ConfigurationError(
                "the server's own names (POCKETCA_SERVER_NAMES) must be within the name constraints: "
                + "; ".join(outside)
            )
    if root_out.exists():
        raise ConfigurationError(f"{root_out} exists: the root file is never overwritten")
    paths = ensure_data_dir(settings)
    if root_out.resolve().is_relative_to(paths.root.resolve()):
        raise ConfigurationError("the root file must not go into the data dir: it is meant to be kept offline")
    chosen = key_type or settings.key_type
    base = common_name or "pocketca"
    with exclusive(paths):
        if has_ca(paths):
            raise ConfigurationError(f"a CA already exists in {paths.root}")
        now = utcnow()
        root_key = generate_private_key(chosen)
        root = build_ca_certificate(
            root_key, f"{base} root CA", now=now, lifetime=ROOT_LIFETIME, publication_url=settings.publication_url
        )
        write_private_file(root_out, root.public_bytes(Encoding.PEM) + dump_private_key(root_key, root_passphrase))
        store, key = _new_ca_key(settings, paths, chosen)  # the intermediate's: in the token, or a file
        public_key = store.public_key()
        _close(store)
        builder = build_intermediate_builder(
            public_key,
            f"{base} issuing CA 1",
            root,
            now=now,
            lifetime=INTERMEDIATE_LIFETIME,
            path_length=path_length,
            name_constraints=name_constraints,
            publication_url=settings.publication_url,
        )
        certificate = builder.sign(root_key, signature_hash(root_key))
        if key is not None:
            FileKeyStore.create(paths.ca_key, key, settings.passphrase())
        _write_issuer_certificates(paths.root, certificate, [root])
        # the root's first CRL, empty: a relying party that checks the whole chain finds it from the first start
        signer, until = FileKeyStore(root_key), now + ROOT_CRL_LIFETIME
        first = build_crl(signer, root, [], number=1, this_update=now, next_update=until)
        write_public_file(paths.root_crl(issuer_id(root)), first.public_bytes(Encoding.DER))
        create_schema(settings)
    return certificate


def read_root_file(path: Path, passphrase: bytes) -> tuple[PrivateKey, x509.Certificate]:
    """The offline root: its certificate and its key, from the file `init --intermediate` wrote."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the root file {path}: {exc.strerror}") from None
    try:
        certificate = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ConfigurationError(f"{path} is not a root file (no PEM certificate in it)") from None
    start = data.find(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    if start < 0:
        raise ConfigurationError(f"{path} holds no encrypted private key")
    try:
        key = load_private_key(data[start:], passphrase)
    except (ConfigurationError, ValueError, TypeError):
        raise ConfigurationError(f"cannot open the root key in {path}: wrong passphrase?") from None
    if not public_keys_match(key.public_key(), certificate.public_key()):
        raise ConfigurationError(f"{path}: the key does not match the certificate")
    return key, certificate


# --- rotation ---------------------------------------------------------------------------------------------


def rotate_with_root(settings: Settings, root_file: Path, root_passphrase: bytes) -> x509.Certificate:
    """A new issuing intermediate signed by the offline root; the old issuer retires (see `_install_issuer`)."""
    root_key, root = read_root_file(root_file, root_passphrase)
    paths = DataPaths(settings.data_dir)
    current, parents = _current_certificates(paths)
    if parents[-1] != root:
        raise ConfigurationError(f"{root_file} is not the root of the current issuing CA")
    if len(parents) != 1:
        raise ConfigurationError("the current CA's issuer is not the root: rotate with --csr-out for that issuer")
    key: PrivateKey | str
    if paths.ca_key_in_token.exists():  # the new key in the same token, as a new object
        label = f"pocketca-ca-{utcnow():%Y%m%d%H%M%S}"
        store = _token_store(settings, create=_key_type_of(current), label=label)
        public_key = store.public_key()
        key = store.uri.redacted()
        store.close()
    else:
        key = generate_private_key(_key_type_of(current))
        public_key = key.public_key()
    basic = current.extensions.get_extension_for_class(x509.BasicConstraints).value
    builder = build_intermediate_builder(
        public_key,
        _next_name(get_common_name(current.subject) or "pocketca issuing CA"),
        parents[0],
        now=utcnow(),
        lifetime=INTERMEDIATE_LIFETIME,
        path_length=basic.path_length,
        name_constraints=name_constraints_of(current),
        publication_url=settings.publication_url,
    )
    certificate = builder.sign(root_key, signature_hash(root_key))
    _install_issuer(settings, paths, key, certificate, parents)
    return certificate


def rotate_request(settings: Settings, csr_out: Path) -> Path:
    """Step one with an external root: a new key (kept in the data dir) and a CSR for the root's owner to sign."""
    paths = DataPaths(settings.data_dir)
    if paths.ca_key_in_token.exists():
        raise ConfigurationError("the CA key is in a PKCS#11 token: rotate with --root-file (a CSR is not supported)")
    if (paths.pending / "ca.key").exists():  # its CSR may be with the root's owner: its key is never replaced
        raise ConfigurationError(
            f"a rotation is already pending ({paths.pending / 'ca.csr'}): finish it with"
            f" `pocketca ca rotate --import-cert NEW.pem`, or remove {paths.pending} to start again"
        )
    current, _ = _current_certificates(paths)
    key = generate_private_key(_key_type_of(current))
    common_name = _next_name(get_common_name(current.subject) or "pocketca issuing CA")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, signature_hash(key))
    )
    with exclusive(paths):
        FileKeyStore.create(paths.pending / "ca.key", key, settings.passphrase())
        write_public_file(paths.pending / "ca.csr", csr.public_bytes(Encoding.PEM))
    write_public_file(csr_out, csr.public_bytes(Encoding.PEM))
    return csr_out


def rotate_import(settings: Settings, cert_file: Path, chain_file: Path | None) -> x509.Certificate:
    """Step two: the certificate the external root signed for the pending key becomes the issuing CA."""
    paths = DataPaths(settings.data_dir)
    if not (paths.pending / "ca.key").exists():
        raise ConfigurationError("no rotation is pending: run `pocketca ca rotate --csr-out FILE` first")
    key = load_private_key((paths.pending / "ca.key").read_bytes(), settings.passphrase())
    certificate = _read_certificate(cert_file)
    _, current_parents = _current_certificates(paths)
    parents = _read_chain(chain_file) if chain_file is not None else current_parents
    problems = _ca_problems(certificate, parents)
    if not public_keys_match(key.public_key(), certificate.public_key()):
        problems.append("the certificate is not for the pending key (from `pocketca ca rotate --csr-out`)")
    if problems:
        raise ConfigurationError("cannot rotate to this CA: " + "; ".join(problems))
    _install_issuer(settings, paths, key, certificate, parents)
    for name in ("ca.key", "ca.csr"):
        (paths.pending / name).unlink(missing_ok=True)
    return certificate


def _current_certificates(paths: DataPaths) -> tuple[x509.Certificate, list[x509.Certificate]]:
    if not paths.ca_cert.exists():
        raise ConfigurationError(f"no CA in {paths.root}: run `pocketca init` first")

    current = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    parents = load_parents(paths.root)
    if not parents:
        raise ConfigurationError(
            "this CA is a self-signed root, not an intermediate: rotation needs `pocketca init --intermediate`"
            " or an imported intermediate (--import-chain)"
        )
    return current, parents


def _key_type_of(certificate: x509.Certificate) -> KeyType:
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "p384" if key.curve.name == "secp384r1" else "p256"
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa4096" if key.key_size >= 4096 else "rsa3072" if key.key_size >= 3072 else "rsa2048"
    return "ed25519"


def _next_name(common_name: str) -> str:
    head, _, number = common_name.rpartition(" ")
    return f"{head} {int(number) + 1}" if head and number.isdigit() else f"{common_name} 2"


def _install_issuer(
    settings: Settings,
    paths: DataPaths,
    key: PrivateKey | str,
    certificate: x509.Certificate,
    parents: list[x509.Certificate],
) -> None:
    """The current issuer moves to issuers/<id>/ (it keeps its CRL and OCSP); the new one takes its place. Rows
    from before issuers are first given to the old one. A running service picks this up when restarted."""
    with exclusive(paths):
        store, old = load_ca(settings)
        _close(store)
        db = Database(settings.sqlalchemy_url)
        try:
            with db.lock("bootstrap"):
                migrate.upgrade(db)
                with db.writer() as session:
                    CertificateRepository(session).adopt(issuer_id(old))
        finally:
            db.dispose()
        retired = paths.issuers / issuer_id(old)
        retired.mkdir(parents=True, exist_ok=True, mode=0o700)
        paths.issuers.chmod(0o700)
        for name in ("ca.key", "ca.key.pkcs11", "ca.pem", "chain.pem"):
            if (paths.root / name).exists():
                write_private_file(retired / name, (paths.root / name).read_bytes())
                if name != "ca.key":
                    (retired / name).chmod(0o644)
        if isinstance(key, str):  # a token object, named by its URI (no PIN)
            write_public_file(paths.ca_key_in_token, (key + "\n").encode())
            paths.ca_key.unlink(missing_ok=True)
        else:
            FileKeyStore.create(paths.ca_key, key, settings.passphrase())
            paths.ca_key_in_token.unlink(missing_ok=True)
        _write_issuer_certificates(paths.root, certificate, parents)


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
    paths = DataPaths(settings.data_dir)
    profiles = load_profiles(paths)
    db = Database(settings.sqlalchemy_url)
    retired = load_retired(settings, db, utcnow()) if paths.retired() else []
    roots = {root_id: (root, paths.root_crl(root_id)) for root_id, root in paths.roots().items()}
    return Authority(
        db,
        keystore,
        certificate,
        public_url=settings.public_url,
        publication_url=settings.publication_url,
        profiles=profiles,
        issue_rate_per_minute=settings.issue_rate_per_minute,
        auth_failures_per_minute=settings.auth_failures_per_minute,
        parents=load_parents(paths.root),
        retired=retired,
        root_crls=RootCRLs(roots, utcnow),
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
                with authority.db.writer() as session:  # rows from before issuers are the current CA's
                    CertificateRepository(session).adopt(authority.issuer.id)
                token = _ensure_admin_token(authority, paths)
            issued = _ensure_server_certificate(authority, paths, settings.server_names)
            for publisher in authority.crl_publishers.values():
                publisher.refresh(wait=True)  # the first GET /crl never waits for a build
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


def is_revoked(authority: Authority, certificate: x509.Certificate) -> bool:
    """Whether the database says this certificate is revoked (an indexed read on the hot path's connection)."""
    state = authority.db.hot.identity_state(authority.db.raw(), format_serial(certificate.serial_number))
    return state is not None and state[0] == "revoked"


def _ensure_server_certificate(authority: Authority, paths: DataPaths, names: list[str]) -> bool:
    if paths.server_cert.exists() and paths.server_key.exists():
        current = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
        rotated = current.issuer != authority.ca_certificate.subject  # after a rotation the new issuer signs it
        due = server_certificate_due(current, names, authority.clock()) or is_revoked(authority, current)
        if not rotated and not due:
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
    of its life (as `serve` does at start), and at once when it is revoked (no client should be shown a
    certificate the service's own OCSP responder calls revoked). The file lock lets one worker re-issue; the
    others find it fresh. Each worker's TLS layer then loads the new files into its live context
    (tls.CertificateReloader)."""

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
        if certificate is None or server_certificate_due(certificate, self.names, self.authority.clock()):
            return True
        try:
            return is_revoked(self.authority, certificate)
        except Exception:  # the database is away: keep serving what we have; /readyz and the CRL say so
            return False

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
