"""A data dir's layout: where each file lives, and the lock that lets one process at a time change them.

ca.key | ca.key.pkcs11, ca.pem, chain.pem   the issuing CA (its key, or the token object's URI), its parents
issuers/<issuer id>/                        issuers retired by a rotation, with their key and chain
pending/{ca.key,ca.csr}                     a rotation waiting for an external root
root-crls/<root id>.crl                     each offline root's newest CRL (`ca crl`)
server.key, server.pem                      the service's own TLS certificate
admin.token, profiles.toml, urls.json, .lock
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from service.ca.issue import issuer_id
from service.settings import Settings


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


def ensure_data_dir(settings: Settings) -> DataPaths:
    if settings.ca_key_uri is not None:  # before anything is made: a CA key URI without the hsm extra stops here
        from service.keys.pkcs11_uri import require_pkcs11

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


def has_ca(paths: DataPaths) -> bool:
    return (paths.ca_key.exists() or paths.ca_key_in_token.exists()) and paths.ca_cert.exists()


def load_parents(directory: Path) -> list[x509.Certificate]:
    chain = directory / "chain.pem"
    return x509.load_pem_x509_certificates(chain.read_bytes()) if chain.exists() else []
