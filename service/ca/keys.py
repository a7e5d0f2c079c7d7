"""Key types: making keys, naming them, refusing weak ones, and (de)serialising private keys."""

from __future__ import annotations

from typing import Final, Literal, get_args

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)

from service.errors import ConfigurationError, PolicyError

KeyType = Literal["p256", "p384", "rsa2048", "rsa3072", "rsa4096", "ed25519"]
KEY_TYPES: Final[tuple[str, ...]] = get_args(KeyType)

# Keys a CSR may carry. RSA below 2048 bits, DSA and curves outside this list are refused.
_CURVES: Final[dict[str, str]] = {"secp256r1": "p256", "secp384r1": "p384", "secp521r1": "p521"}
MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 8192  # bigger keys only cost us CPU to verify
MIN_RSA_EXPONENT: Final = 65537

PrivateKey = CertificateIssuerPrivateKeyTypes


def parse_key_type(text: str) -> KeyType:
    value = text.strip().lower().replace("-", "")
    if value not in KEY_TYPES:
        raise ValueError(f"unknown key type {text!r}; choose one of {', '.join(KEY_TYPES)}")
    return value  # type: ignore[return-value]


def generate_private_key(key_type: KeyType) -> PrivateKey:
    if key_type == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type.removeprefix("rsa")))


def describe_public_key(public_key: CertificatePublicKeyTypes) -> str:
    """A short name such as ``p256``, ``rsa2048`` or ``ed25519``; ``unsupported:<kind>`` otherwise."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"rsa{public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return _CURVES.get(public_key.curve.name, f"unsupported:{public_key.curve.name}")
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    return f"unsupported:{type(public_key).__name__}"


def key_violations(public_key: CertificatePublicKeyTypes) -> list[str]:
    """Every reason this key may not be certified; empty when it is acceptable."""
    if isinstance(public_key, rsa.RSAPublicKey):
        problems = []
        if public_key.key_size < MIN_RSA_BITS:
            problems.append(f"RSA key of {public_key.key_size} bits is too weak (minimum {MIN_RSA_BITS})")
        if public_key.key_size > MAX_RSA_BITS:
            problems.append(f"RSA key of {public_key.key_size} bits is too large (maximum {MAX_RSA_BITS})")
        if public_key.public_numbers().e < MIN_RSA_EXPONENT:
            problems.append(f"RSA public exponent must be at least {MIN_RSA_EXPONENT}")
        return problems
    name = describe_public_key(public_key)
    if name.startswith("unsupported:"):
        return [f"key type {name.removeprefix('unsupported:')} is not accepted"]
    return []


def check_public_key(public_key: CertificatePublicKeyTypes) -> None:
    problems = key_violations(public_key)
    if problems:
        raise PolicyError(problems)


def signature_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None:
    """The digest to sign with: none for Ed25519, SHA-384 for P-384, SHA-256 otherwise."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def dump_private_key(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with the best available scheme when a passphrase is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def load_private_key(data: bytes, passphrase: bytes | None = None) -> PrivateKey:
    """Loads a PEM private key (PKCS#8 or the traditional OpenSSL forms) that can sign certificates."""
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as exc:  # encrypted without a passphrase, or a passphrase for a plain key
        raise ConfigurationError(f"CA key passphrase problem: {exc}") from None
    except (ValueError, UnsupportedAlgorithm):
        hint = "wrong passphrase or not a PEM private key" if passphrase else "not a PEM private key"
        raise ConfigurationError(f"cannot load the CA key ({hint})") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        raise ConfigurationError(f"CA key type {type(key).__name__} is not supported")
    return key


def public_keys_match(a: CertificatePublicKeyTypes, b: CertificatePublicKeyTypes) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(serialization.Encoding.DER, spki) == b.public_bytes(serialization.Encoding.DER, spki)
