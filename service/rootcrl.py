"""`pocketca ca crl`: the offline root signs its next CRL into the data dir, where the service serves it.

The root key is read from the root file, signs, and is dropped: nothing of it lands in the data dir. The CRL
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
from service.bootstrap import DataPaths, exclusive, has_ca, load_parents, read_root_file
from service.ca.crl import RevokedEntry, build_crl, crl_number, load_crl_of, parse_reason, revoked_entries
from service.ca.issue import issuer_id
from service.errors import ConfigurationError
from service.keystore import FileKeyStore, write_public_file
from service.settings import Settings

MAX_NEXT_UPDATE_DAYS = 365  # the CA/Browser Forum's bound for a CRL about CA certificates


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
        raise ConfigurationError(f"--reason: {exc}") from None
    paths = DataPaths(settings.data_dir)
    if not has_ca(paths):
        raise ConfigurationError(f"no CA in {paths.root}: run `pocketca init --intermediate` first")
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
