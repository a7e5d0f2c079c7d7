"""Small builders the tests share: keys, CSRs, a foreign CA, files on disk."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from service.ca.csr import build_csr
from service.ca.issue import build_ca_certificate, build_leaf_builder, random_serial_number
from service.ca.keys import PrivateKey
from service.ca.names import build_subject, parse_general_name
from service.ca.policy import LeafSpec
from service.ca.profiles import BUILTIN_PROFILES


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def csr_pem(key: PrivateKey, cn: str, sans: list[str] | None = None) -> bytes:
    return build_csr(key, cn, sans or []).public_bytes(Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def cert_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.PEM)


class ForeignCA:
    """A CA that is not ours: its certificates must be refused everywhere."""

    def __init__(self) -> None:
        self.key = p256()
        self.certificate = build_ca_certificate(self.key, "foreign CA", now=now(), lifetime=dt.timedelta(days=30))

    def issue_client(self, cn: str) -> tuple[PrivateKey, x509.Certificate]:
        key = p256()
        spec = LeafSpec(build_subject(cn), cn, (parse_general_name(cn),), BUILTIN_PROFILES["client"], 30)
        builder = build_leaf_builder(
            spec,
            key.public_key(),
            self.certificate,
            serial_number=random_serial_number(),
            now=now(),
            public_url="https://foreign.invalid",
        )
        return key, builder.sign(self.key, hashes.SHA256())


def write_pair(directory: Path, name: str, key: PrivateKey, certificate: x509.Certificate) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert_pem(certificate))
    key_path.write_bytes(key_pem(key))
    key_path.chmod(0o600)
    return cert_path, key_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
