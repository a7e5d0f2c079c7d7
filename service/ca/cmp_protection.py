"""CMP message protection (RFC 4210 5.1.3, RFC 9481): MACs from a shared secret, and signatures.

MAC-based: PasswordBasedMac (1.2.840.113533.7.66.13: the secret and a salt hashed `iterationCount` times with the
one-way function, then an HMAC keyed with the result) and PBMAC1 (RFC 8018: PBKDF2 with an HMAC, then an HMAC).
Signature-based: ECDSA, RSA PKCS #1 v1.5 with SHA-2, Ed25519 and Ed448. cryptography does every hash, MAC, KDF and
signature; pyasn1 only reads and writes the parameters. An algorithm outside these is refused with badAlg, never
guessed at.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, replace
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from pyasn1.type import univ
from pyasn1_modules import rfc5280, rfc8018

from service.ca.cmp_asn1 import ID_PASSWORD_BASED_MAC, ID_PBKDF2, ID_PBMAC1, PBM_PARAMETER, decode, encode
from service.ca.cmp_failures import CmpError, FailInfo
from service.ca.keys import PrivateKey

MIN_ITERATIONS: Final = 100  # RFC 4210 5.1.3.1 and RFC 9481 6.1.1 ask for at least this
MAX_ITERATIONS: Final = 100_000  # as OpenSSL's own bound: beyond it a client only makes us burn CPU
MAX_SALT: Final = 64
SALT_BYTES: Final = 16

_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "1.3.14.3.2.26": hashes.SHA1,  # only inside a MAC (HMAC-SHA1 and PBM's owf remain sound); never a signature
    "2.16.840.1.101.3.4.2.4": hashes.SHA224,
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}
_HMACS: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "1.3.6.1.5.5.8.1.2": hashes.SHA1,  # hmac-sha1 (RFC 2104 by IANA; OpenSSL's default -mac)
    "1.2.840.113549.2.7": hashes.SHA1,  # hmacWithSHA1
    "1.2.840.113549.2.8": hashes.SHA224,
    "1.2.840.113549.2.9": hashes.SHA256,
    "1.2.840.113549.2.10": hashes.SHA384,
    "1.2.840.113549.2.11": hashes.SHA512,
}
_ECDSA_SHA256: Final = "1.2.840.10045.4.3.2"
_ECDSA_SHA384: Final = "1.2.840.10045.4.3.3"
_RSA_SHA256: Final = "1.2.840.113549.1.1.11"
_ED25519: Final = "1.3.101.112"
_SIGNATURES: Final[dict[str, tuple[str, type[hashes.HashAlgorithm] | None]]] = {
    "1.2.840.10045.4.3.1": ("ec", hashes.SHA224),
    "1.2.840.10045.4.3.2": ("ec", hashes.SHA256),
    "1.2.840.10045.4.3.3": ("ec", hashes.SHA384),
    "1.2.840.10045.4.3.4": ("ec", hashes.SHA512),
    "1.2.840.113549.1.1.14": ("rsa", hashes.SHA224),
    "1.2.840.113549.1.1.11": ("rsa", hashes.SHA256),
    "1.2.840.113549.1.1.12": ("rsa", hashes.SHA384),
    "1.2.840.113549.1.1.13": ("rsa", hashes.SHA512),
    "1.3.101.112": ("ed25519", None),
    "1.3.101.113": ("ed448", None),
}


@dataclass(frozen=True)
class PasswordBasedMac:
    salt: bytes
    owf: hashes.HashAlgorithm
    iterations: int
    mac: hashes.HashAlgorithm
    owf_oid: str
    mac_oid: str


@dataclass(frozen=True)
class Pbmac1:
    salt: bytes
    iterations: int
    key_length: int
    prf: hashes.HashAlgorithm
    mac: hashes.HashAlgorithm
    prf_oid: str
    mac_oid: str


MacAlgorithm = PasswordBasedMac | Pbmac1


def is_mac_algorithm(algorithm: rfc5280.AlgorithmIdentifier) -> bool:
    return algorithm["algorithm"] in (ID_PASSWORD_BASED_MAC, ID_PBMAC1)


def load_mac_algorithm(algorithm: rfc5280.AlgorithmIdentifier) -> MacAlgorithm:
    """The protectionAlg of a MAC-protected message, its parameters checked; CmpError(badAlg) otherwise."""
    try:
        if algorithm["algorithm"] == ID_PASSWORD_BASED_MAC:
            return _password_based_mac(decode(algorithm["parameters"].asOctets(), PBM_PARAMETER))
        if algorithm["algorithm"] == ID_PBMAC1:
            return _pbmac1(decode(algorithm["parameters"].asOctets(), rfc8018.PBMAC1_params()))
    except (ValueError, KeyError) as exc:
        raise CmpError(FailInfo.badAlg, f"the MAC parameters do not read: {exc}") from None
    raise CmpError(FailInfo.badAlg, f"protectionAlg {algorithm['algorithm']} is not a MAC this CA knows")


def _hash(
    table: dict[str, type[hashes.HashAlgorithm]], algorithm: rfc5280.AlgorithmIdentifier
) -> tuple[str, hashes.HashAlgorithm]:
    oid = str(algorithm["algorithm"])
    if oid not in table:
        raise CmpError(FailInfo.badAlg, f"algorithm {oid} is not supported in a MAC")
    return oid, table[oid]()


def _iterations(value: univ.Integer) -> int:
    count = int(value)
    if not MIN_ITERATIONS <= count <= MAX_ITERATIONS:
        raise CmpError(FailInfo.badAlg, f"iterationCount must be {MIN_ITERATIONS} to {MAX_ITERATIONS}, not {count}")
    return count


def _salt(value: bytes) -> bytes:
    if not 1 <= len(value) <= MAX_SALT:
        raise CmpError(FailInfo.badAlg, f"the salt must be 1 to {MAX_SALT} bytes")
    return value


def _password_based_mac(parameters: univ.Sequence) -> PasswordBasedMac:
    owf_oid, owf = _hash(_HASHES, parameters["owf"])
    mac_oid, mac = _hash(_HMACS, parameters["mac"])
    salt = _salt(parameters["salt"].asOctets())
    return PasswordBasedMac(salt, owf, _iterations(parameters["iterationCount"]), mac, owf_oid, mac_oid)


def _pbmac1(parameters: rfc8018.PBMAC1_params) -> Pbmac1:
    kdf = parameters["keyDerivationFunc"]
    if kdf["algorithm"] != ID_PBKDF2:
        raise CmpError(FailInfo.badAlg, "PBMAC1 needs PBKDF2 as its key derivation function")
    pbkdf2 = decode(kdf["parameters"].asOctets(), rfc8018.PBKDF2_params())
    if pbkdf2["salt"].getName() != "specified":
        raise CmpError(FailInfo.badAlg, "PBKDF2's salt must be given")
    if not pbkdf2["keyLength"].isValue:
        raise CmpError(FailInfo.badAlg, "PBKDF2's keyLength must be given (RFC 9481 6.1.2)")
    key_length = int(pbkdf2["keyLength"])
    if not 16 <= key_length <= 64:
        raise CmpError(FailInfo.badAlg, "PBKDF2's keyLength must be 16 to 64 bytes")
    prf_oid, prf = _hash(_HMACS, pbkdf2["prf"])
    mac_oid, mac = _hash(_HMACS, parameters["messageAuthScheme"])
    salt = _salt(pbkdf2["salt"]["specified"].asOctets())
    return Pbmac1(salt, _iterations(pbkdf2["iterationCount"]), key_length, prf, mac, prf_oid, mac_oid)


def compute_mac(algorithm: MacAlgorithm, secret: bytes, data: bytes) -> bytes:
    if isinstance(algorithm, PasswordBasedMac):
        digest = hashes.Hash(algorithm.owf)
        digest.update(secret + algorithm.salt)
        key = digest.finalize()
        name = algorithm.owf.name
        for _ in range(algorithm.iterations - 1):
            key = hashlib.new(name, key).digest()
    else:
        kdf = PBKDF2HMAC(algorithm.prf, algorithm.key_length, algorithm.salt, algorithm.iterations)
        key = kdf.derive(secret)
    mac = HMAC(key, algorithm.mac)
    mac.update(data)
    return mac.finalize()


def verify_mac(algorithm: MacAlgorithm, secret: bytes, data: bytes, protection: bytes) -> None:
    if not hmac.compare_digest(compute_mac(algorithm, secret, data), protection):
        raise CmpError(FailInfo.badMessageCheck, "the MAC does not verify: wrong secret or altered message")


def with_fresh_salt(algorithm: MacAlgorithm) -> MacAlgorithm:
    """The same algorithm with a new random salt (a response never reuses the request's)."""
    return replace(algorithm, salt=os.urandom(SALT_BYTES))


def mac_algorithm_identifier(algorithm: MacAlgorithm) -> rfc5280.AlgorithmIdentifier:
    identifier = rfc5280.AlgorithmIdentifier()
    if isinstance(algorithm, PasswordBasedMac):
        parameters = PBM_PARAMETER.clone()
        parameters["salt"] = algorithm.salt
        parameters["owf"] = _algorithm(algorithm.owf_oid)
        parameters["iterationCount"] = algorithm.iterations
        parameters["mac"] = _algorithm(algorithm.mac_oid)
        identifier["algorithm"] = ID_PASSWORD_BASED_MAC
    else:
        pbkdf2 = rfc8018.PBKDF2_params()
        pbkdf2["salt"]["specified"] = algorithm.salt
        pbkdf2["iterationCount"] = algorithm.iterations
        pbkdf2["keyLength"] = algorithm.key_length
        pbkdf2["prf"] = _algorithm(algorithm.prf_oid, null=True)
        kdf = rfc8018.AlgorithmIdentifier()
        kdf["algorithm"] = ID_PBKDF2
        kdf["parameters"] = univ.Any(encode(pbkdf2))
        parameters = rfc8018.PBMAC1_params()
        parameters["keyDerivationFunc"] = kdf
        parameters["messageAuthScheme"] = _algorithm(algorithm.mac_oid, null=True)
        identifier["algorithm"] = ID_PBMAC1
    identifier["parameters"] = univ.Any(encode(parameters))
    return identifier


def _algorithm(oid: str, *, null: bool = False) -> rfc5280.AlgorithmIdentifier:
    identifier = rfc5280.AlgorithmIdentifier()
    identifier["algorithm"] = univ.ObjectIdentifier(oid)
    if null:
        identifier["parameters"] = univ.Any(b"\x05\x00")
    return identifier


# --- signatures --------------------------------------------------------------------------------------------------


def verify_signature(
    public_key: CertificatePublicKeyTypes, algorithm: rfc5280.AlgorithmIdentifier, data: bytes, signature: bytes
) -> None:
    """CmpError(badAlg) for an algorithm this CA does not take or one that does not fit the key;
    CmpError(badMessageCheck) when the signature does not verify."""
    oid = str(algorithm["algorithm"])
    if oid not in _SIGNATURES:
        raise CmpError(FailInfo.badAlg, f"signature algorithm {oid} is not supported")
    kind, hash_type = _SIGNATURES[oid]
    try:
        if kind == "ec" and isinstance(public_key, ec.EllipticCurvePublicKey) and hash_type:
            public_key.verify(signature, data, ec.ECDSA(hash_type()))
        elif kind == "rsa" and isinstance(public_key, rsa.RSAPublicKey) and hash_type:
            public_key.verify(signature, data, padding.PKCS1v15(), hash_type())
        elif kind == "ed25519" and isinstance(public_key, ed25519.Ed25519PublicKey):  # noqa: SIM114 (two types)
            public_key.verify(signature, data)
        elif kind == "ed448" and isinstance(public_key, ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        else:
            raise CmpError(FailInfo.badAlg, f"signature algorithm {oid} does not fit the signer's key")
    except InvalidSignature:
        raise CmpError(FailInfo.badMessageCheck, "the signature does not verify") from None


def signature_algorithm(key: PrivateKey) -> rfc5280.AlgorithmIdentifier:
    """The protectionAlg of `key`'s signatures: ECDSA with SHA-256 (SHA-384 for P-384 and bigger curves),
    RSA PKCS #1 v1.5 with SHA-256 (NULL parameters, RFC 4055), or Ed25519."""
    identifier = rfc5280.AlgorithmIdentifier()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        identifier["algorithm"] = univ.ObjectIdentifier(_ECDSA_SHA384 if key.curve.key_size >= 384 else _ECDSA_SHA256)
    elif isinstance(key, rsa.RSAPrivateKey):
        identifier["algorithm"] = univ.ObjectIdentifier(_RSA_SHA256)
        identifier["parameters"] = univ.Any(b"\x05\x00")
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        identifier["algorithm"] = univ.ObjectIdentifier(_ED25519)
    else:
        raise TypeError(f"cannot protect CMP messages with a {type(key).__name__}")
    return identifier


def sign(key: PrivateKey, data: bytes) -> bytes:
    """The signature `signature_algorithm(key)` names."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        hash_type: hashes.HashAlgorithm = hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()
        return key.sign(data, ec.ECDSA(hash_type))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    raise TypeError(f"cannot protect CMP messages with a {type(key).__name__}")


def signature_hash_for(algorithm: rfc5280.AlgorithmIdentifier) -> hashes.HashAlgorithm | None:
    """The hash a signature algorithm uses (None for EdDSA and for algorithms we do not know)."""
    entry = _SIGNATURES.get(str(algorithm["algorithm"]))
    return entry[1]() if entry and entry[1] else None
