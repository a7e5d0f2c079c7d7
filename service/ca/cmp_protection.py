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

from service.ca.cmp_asn1 import ID_PBKDF2, decode, encode
from service.ca.cmp_der import AlgorithmId, content, fields, integer, integer_der
from service.ca.cmp_failures import CmpError, FailInfo
from service.ca.der import tlv
from service.ca.keys import PrivateKey

PBM: Final = "1.2.840.113533.7.66.13"  # RFC 4210 5.1.3.1
PBMAC1: Final = "1.2.840.113549.1.5.14"  # RFC 8018, RFC 9481 6.1.2
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


def is_mac_algorithm(algorithm: AlgorithmId) -> bool:
    return algorithm.oid in (PBM, PBMAC1)


def load_mac_algorithm(algorithm: AlgorithmId) -> MacAlgorithm:
    """The protectionAlg of a MAC-protected message, its parameters checked; CmpError(badAlg) otherwise."""
    try:
        if algorithm.oid == PBM and algorithm.parameters is not None:
            return _password_based_mac(algorithm.parameters)
        if algorithm.oid == PBMAC1 and algorithm.parameters is not None:
            return _pbmac1(decode(algorithm.parameters, rfc8018.PBMAC1_params()))
    except (ValueError, KeyError) as exc:
        raise CmpError(FailInfo.badAlg, f"the MAC parameters do not read: {exc}") from None
    raise CmpError(FailInfo.badAlg, f"protectionAlg {algorithm.oid} is not a MAC this CA knows")


def _hash(table: dict[str, type[hashes.HashAlgorithm]], oid: str) -> hashes.HashAlgorithm:
    if oid not in table:
        raise CmpError(FailInfo.badAlg, f"algorithm {oid} is not supported in a MAC")
    return table[oid]()


def _iterations(count: int) -> int:
    if not MIN_ITERATIONS <= count <= MAX_ITERATIONS:
        raise CmpError(FailInfo.badAlg, f"iterationCount must be {MIN_ITERATIONS} to {MAX_ITERATIONS}, not {count}")
    return count


def _salt(value: bytes) -> bytes:
    if not 1 <= len(value) <= MAX_SALT:
        raise CmpError(FailInfo.badAlg, f"the salt must be 1 to {MAX_SALT} bytes")
    return value


def _password_based_mac(parameters: bytes) -> PasswordBasedMac:
    """PBMParameter ::= SEQUENCE { salt OCTET STRING, owf AlgorithmIdentifier, iterationCount INTEGER,
    mac AlgorithmIdentifier } (RFC 4210 5.1.3.1), read by hand: it is in every message openssl protects."""
    parts = fields(parameters)
    if len(parts) != 4:
        raise ValueError("PBMParameter has four fields")
    (_, salt), (_, owf), (_, count), (_, mac) = parts
    owf_oid, mac_oid = AlgorithmId.read(owf).oid, AlgorithmId.read(mac).oid
    return PasswordBasedMac(
        _salt(content(salt, 0x04)), _hash(_HASHES, owf_oid), _iterations(integer(count)), _hash(_HMACS, mac_oid),
        owf_oid, mac_oid,
    )  # fmt: skip


def _pbmac1(parameters: univ.Sequence) -> Pbmac1:
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
    prf_oid, mac_oid = str(pbkdf2["prf"]["algorithm"]), str(parameters["messageAuthScheme"]["algorithm"])
    salt = _salt(pbkdf2["salt"]["specified"].asOctets())
    iterations = _iterations(int(pbkdf2["iterationCount"]))
    return Pbmac1(salt, iterations, key_length, _hash(_HMACS, prf_oid), _hash(_HMACS, mac_oid), prf_oid, mac_oid)


def compute_mac(algorithm: MacAlgorithm, secret: bytes, data: bytes) -> bytes:
    if isinstance(algorithm, PasswordBasedMac):
        # owf^iterationCount(secret || salt): a loop of plain digests, hashlib's (the same OpenSSL code as
        # cryptography's Hash, without its three Python calls per round: 0.2 ms for openssl's 500, not 0.6)
        one_way = getattr(hashlib, algorithm.owf.name)
        key = one_way(secret + algorithm.salt).digest()
        for _ in range(algorithm.iterations - 1):
            key = one_way(key).digest()
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


def mac_algorithm_identifier(algorithm: MacAlgorithm) -> AlgorithmId:
    if isinstance(algorithm, PasswordBasedMac):
        parameters = tlv(
            0x30, tlv(0x04, algorithm.salt), AlgorithmId(algorithm.owf_oid).der(), integer_der(algorithm.iterations),
            AlgorithmId(algorithm.mac_oid).der(),
        )  # fmt: skip
        return AlgorithmId(PBM, parameters)
    pbkdf2 = rfc8018.PBKDF2_params()
    pbkdf2["salt"]["specified"] = algorithm.salt
    pbkdf2["iterationCount"] = algorithm.iterations
    pbkdf2["keyLength"] = algorithm.key_length
    pbkdf2["prf"] = _hmac_identifier(algorithm.prf_oid)
    kdf = rfc8018.AlgorithmIdentifier()
    kdf["algorithm"] = ID_PBKDF2
    kdf["parameters"] = univ.Any(encode(pbkdf2))
    parameters = rfc8018.PBMAC1_params()
    parameters["keyDerivationFunc"] = kdf
    parameters["messageAuthScheme"] = _hmac_identifier(algorithm.mac_oid)
    return AlgorithmId(PBMAC1, encode(parameters))


def _hmac_identifier(oid: str) -> rfc5280.AlgorithmIdentifier:
    identifier = rfc5280.AlgorithmIdentifier()
    identifier["algorithm"] = univ.ObjectIdentifier(oid)
    identifier["parameters"] = univ.Any(b"\x05\x00")
    return identifier


# --- signatures --------------------------------------------------------------------------------------------------


def verify_signature(
    public_key: CertificatePublicKeyTypes, algorithm: AlgorithmId, data: bytes, signature: bytes
) -> None:
    """CmpError(badAlg) for an algorithm this CA does not take or one that does not fit the key;
    CmpError(badMessageCheck) when the signature does not verify."""
    oid = algorithm.oid
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


def signature_algorithm(key: PrivateKey) -> AlgorithmId:
    """The protectionAlg of `key`'s signatures: ECDSA with SHA-256 (SHA-384 for P-384 and bigger curves),
    RSA PKCS #1 v1.5 with SHA-256 (NULL parameters, RFC 4055), or Ed25519."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return AlgorithmId(_ECDSA_SHA384 if key.curve.key_size >= 384 else _ECDSA_SHA256)
    if isinstance(key, rsa.RSAPrivateKey):
        return AlgorithmId(_RSA_SHA256, b"\x05\x00")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return AlgorithmId(_ED25519)
    raise TypeError(f"cannot protect CMP messages with a {type(key).__name__}")


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
