"""PKCS#12 bundles for people: a key made on the server, its certificate and the chain, behind a password."""

from __future__ import annotations

from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs12

MIN_PASSWORD_LENGTH: Final = 8
KDF_ROUNDS: Final = 600_000  # PBKDF2-SHA256, as OWASP suggests today


def build_pkcs12(
    key: pkcs12.PKCS12PrivateKeyTypes,
    certificate: x509.Certificate,
    chain: list[x509.Certificate],
    password: bytes,
    *,
    friendly_name: str,
    legacy: bool = False,
) -> bytes:
    """Modern: PBES2 with AES-256-CBC and a SHA-256 MAC. Legacy: 3DES and a SHA-1 MAC, for keystores that
    read nothing newer (older macOS Keychain, old Java)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    builder = PrivateFormat.PKCS12.encryption_builder()
    if legacy:
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1())  # noqa: S303 (what legacy readers need)
    else:
        builder = (
            builder.kdf_rounds(KDF_ROUNDS)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
        )
    return pkcs12.serialize_key_and_certificates(
        friendly_name.encode(), key, certificate, chain, builder.build(password)
    )
