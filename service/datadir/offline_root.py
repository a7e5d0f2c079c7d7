"""An offline root: `init --intermediate` makes a root whose key goes only to a file kept away from the data dir,
and the issuing intermediate it signs, which this data dir serves with; `ca crl` has the root sign its next CRL
into the data dir, where the service serves it.

The root key is read from the root file, signs, and is dropped: nothing of it lands in the data dir. A root CRL
carries the previous one's entries (the root keeps no database: its newest CRL is its record), and optionally one
more, an issuing CA of this data dir signed by the root; its number is the previous one's plus one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.authority import utcnow
from service.ca.constraints import ConstraintSpec, build_name_constraints, violations_of
from service.ca.crl import RevokedEntry, build_crl, crl_number, load_crl_of, parse_reason, revoked_entries
from service.ca.issue import build_ca_certificate, build_intermediate_builder, issuer_id
from service.ca.keys import (
    KeyType,
    PrivateKey,
    dump_private_key,
    generate_private_key,
    load_private_key,
    public_keys_match,
    signature_hash,
)
from service.ca.names import parse_general_name
from service.datadir.issuers import KeyAccess, new_ca_key, write_issuer_certificates
from service.datadir.layout import DataPaths, ensure_data_dir, exclusive, has_ca, load_parents
from service.datadir.schema import create_schema
from service.errors import CAExistsError, ConfigurationError, FileError, NoCAError, SettingError
from service.keys.file_key import FileKeyStore
from service.keys.files import write_private_file, write_public_file
from service.settings import Settings

MIN_ROOT_PASSPHRASE = 8
ROOT_LIFETIME = dt.timedelta(days=7300)
ROOT_CRL_LIFETIME = dt.timedelta(days=90)  # `ca crl --next-update` by default
INTERMEDIATE_LIFETIME = dt.timedelta(days=1825)
MAX_NEXT_UPDATE_DAYS = 365  # the CA/Browser Forum's bound for a CRL about CA certificates


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
        raise SettingError("name constraints", str(exc)) from None
    if name_constraints is not None:  # the service's own certificate must be possible under them
        try:
            own = [parse_general_name(name) for name in settings.server_names]
        except ValueError as exc:
            raise SettingError("POCKETCA_SERVER_NAMES", str(exc)) from None
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
            raise CAExistsError(paths.root)
        now = utcnow()
        root_key = generate_private_key(chosen)
        root = build_ca_certificate(
            root_key, f"{base} root CA", now=now, lifetime=ROOT_LIFETIME, publication_url=settings.publication_url
        )
        write_private_file(root_out, root.public_bytes(Encoding.PEM) + dump_private_key(root_key, root_passphrase))
        keys = KeyAccess.from_settings(settings)
        store, key = new_ca_key(keys, paths, chosen)  # the intermediate's: in the token, or a file
        public_key = store.public_key()
        store.close()
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
            FileKeyStore.create(paths.ca_key, key, keys.passphrase)
        write_issuer_certificates(paths.root, certificate, [root])
        # the root's first CRL, empty: a relying party that checks the whole chain finds it from the first start
        signer, until = FileKeyStore(root_key), now + ROOT_CRL_LIFETIME
        first = build_crl(signer, root, [], number=1, this_update=now, next_update=until)
        write_public_file(paths.root_crl(issuer_id(root)), first.public_bytes(Encoding.DER))
        create_schema(settings, certificate)
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
        raise FileError(path, "the key does not match the certificate")
    return key, certificate


@dataclass(frozen=True)
class SignedRootCRL:
    path: Path
    root: x509.Certificate
    root_id: str
    crl: x509.CertificateRevocationList

    @property
    def number(self) -> int:
        return crl_number(self.crl)


def sign_root_crl(
    settings: Settings,
    root_file: Path,
    passphrase: bytes,
    *,
    revoke: str | None = None,
    reason: str | None = None,
    next_update_days: int = 90,
) -> SignedRootCRL:
    if not 1 <= next_update_days <= MAX_NEXT_UPDATE_DAYS:
        raise ConfigurationError(f"--next-update must be between 1 and {MAX_NEXT_UPDATE_DAYS} days")
    if (revoke is None) != (reason is None):
        raise ConfigurationError("--revoke ISSUER_ID and --reason R go together")
    try:
        reason_name = parse_reason(reason) if reason is not None else None
    except ValueError as exc:
        raise SettingError("--reason", str(exc)) from None
    paths = DataPaths(settings.data_dir)
    if not has_ca(paths):
        raise NoCAError(paths.root, "run `pocketca init --intermediate` first")
    root_key, root = read_root_file(root_file, passphrase)
    root_id = issuer_id(root)
    if root_id not in paths.roots():
        raise ConfigurationError(f"{root_file} is not the root of an issuing CA in {paths.root}")
    path = paths.root_crl(root_id)
    with exclusive(paths):
        previous = _previous(path, root)
        entries = revoked_entries(previous) if previous is not None else []
        now = utcnow()
        if revoke is not None and reason_name is not None:
            entries.append(RevokedEntry(_revocable(paths, root, revoke, entries).serial_number, now, reason_name))
        number = crl_number(previous) + 1 if previous is not None else 1
        until = now + dt.timedelta(days=next_update_days)
        crl = build_crl(FileKeyStore(root_key), root, entries, number=number, this_update=now, next_update=until)
        del root_key
        write_public_file(path, crl.public_bytes(Encoding.DER))
    return SignedRootCRL(path, root, root_id, crl)


def _previous(path: Path, root: x509.Certificate) -> x509.CertificateRevocationList | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return load_crl_of(data, root)
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not this root's CRL ({exc}): move it away and sign a new one") from None


def _revocable(paths: DataPaths, root: x509.Certificate, wanted: str, entries: list[RevokedEntry]) -> x509.Certificate:
    """The issuing CA `wanted` names: one of this data dir's, signed by the root, retired, not yet revoked."""
    current = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    if wanted == issuer_id(current):
        raise ConfigurationError(
            f"{wanted} is the current issuing CA: rotate first (`pocketca ca rotate --root-file FILE`),"
            " restart, then revoke it"
        )
    for directory in paths.retired():
        certificate = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        if issuer_id(certificate) != wanted:
            continue
        parents = load_parents(directory)
        if not parents or parents[0] != root:
            raise ConfigurationError(f"the issuing CA {wanted} was not signed by this root")
        if any(entry.serial_number == certificate.serial_number for entry in entries):
            raise ConfigurationError(f"the issuing CA {wanted} is revoked in the root's CRL already")
        return certificate
    raise ConfigurationError(f"no retired issuing CA {wanted[:40]!r} in {paths.root}: `pocketca ca list` shows them")
