"""SCEP's vocabulary (RFC 8894): message types, statuses, failure reasons, the algorithms we read and write,
and the one exception every refusal raises.

ScepError carries the `FailInfo` a front door puts in its CertRep FAILURE, and, once the request's signed
attributes could be read, the `ReplyTo` that CertRep needs (transactionID, the nonce to echo, the digest).
Without a `ReplyTo` there is nobody to answer in SCEP terms (garbage, truncated or foreign bytes): the front door
answers with an HTTP 400 problem instead.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, algorithms

from service.errors import InvalidRequestError


class MessageType(enum.IntEnum):
    """pkiMessage messageType (RFC 8894 §3.2.1.2); sent as a decimal PrintableString."""

    CERT_REP = 3
    RENEWAL_REQ = 17
    PKCS_REQ = 19
    CERT_POLL = 20  # GetCertInitial in the drafts before RFC 8894
    GET_CERT = 21
    GET_CRL = 22


REQUEST_TYPES = frozenset(MessageType) - {MessageType.CERT_REP}


class PkiStatus(enum.IntEnum):
    SUCCESS = 0
    FAILURE = 2
    PENDING = 3


class FailInfo(enum.IntEnum):
    """Why a request failed (RFC 8894 §3.2.1.4.5)."""

    BAD_ALG = 0  # an algorithm we do not support (digest, signature, cipher, key transport)
    BAD_MESSAGE_CHECK = 1  # the signature, the messageDigest or the envelope does not check out
    BAD_REQUEST = 2  # not permitted or not understood: bad challenge, unknown type, malformed content
    BAD_TIME = 3  # signingTime too far from our clock
    BAD_CERT_ID = 4  # no certificate matches (GetCert, GetCRL, CertPoll, the envelope's recipient, a renewal)


class Cipher(enum.Enum):
    """Content-encryption algorithms of the pkcsPKIEnvelope, weakest first (`strength` orders them)."""

    DES = ("1.3.14.3.2.7", 8, "DES")  # single DES: 56-bit keys; what micromdm scepclient 2.1.0 always sends
    DES3 = ("1.2.840.113549.3.7", 24, "DES3")
    AES128 = ("2.16.840.1.101.3.4.1.2", 16, "AES")
    AES192 = ("2.16.840.1.101.3.4.1.22", 24, "AES")
    AES256 = ("2.16.840.1.101.3.4.1.42", 32, "AES")

    def __init__(self, oid: str, key_size: int, capability: str) -> None:
        self.oid = oid
        self.key_size = key_size  # octets
        self.capability = capability  # its GetCACaps keyword

    @property
    def strength(self) -> int:
        return list(Cipher).index(self)

    @property
    def block_size(self) -> int:
        return 8 if self in (Cipher.DES, Cipher.DES3) else 16

    def algorithm(self, key: bytes) -> BlockCipherAlgorithm:
        if self is Cipher.DES:
            return TripleDES(key * 3)  # EDE with K1 = K2 = K3 is single DES
        if self is Cipher.DES3:
            return TripleDES(key)
        return algorithms.AES(key)

    @classmethod
    def from_oid(cls, oid: str) -> Cipher | None:
        return next((cipher for cipher in cls if cipher.oid == oid), None)


class Digest(enum.Enum):
    """Message digests of the SignerInfo, weakest first. MD5 is not among them: a request using it is badAlg."""

    SHA1 = ("1.3.14.3.2.26", "SHA-1", "1.2.840.113549.1.1.5", "1.2.840.10045.4.1")
    SHA224 = ("2.16.840.1.101.3.4.2.4", "SHA-224", "1.2.840.113549.1.1.14", "1.2.840.10045.4.3.1")
    SHA256 = ("2.16.840.1.101.3.4.2.1", "SHA-256", "1.2.840.113549.1.1.11", "1.2.840.10045.4.3.2")
    SHA384 = ("2.16.840.1.101.3.4.2.2", "SHA-384", "1.2.840.113549.1.1.12", "1.2.840.10045.4.3.3")
    SHA512 = ("2.16.840.1.101.3.4.2.3", "SHA-512", "1.2.840.113549.1.1.13", "1.2.840.10045.4.3.4")

    def __init__(self, oid: str, capability: str, rsa_oid: str, ecdsa_oid: str) -> None:
        self.oid = oid
        self.capability = capability  # its GetCACaps keyword
        self.rsa_oid = rsa_oid  # shaNWithRSAEncryption, which some clients put as the SignerInfo's algorithm
        self.ecdsa_oid = ecdsa_oid

    @property
    def strength(self) -> int:
        return list(Digest).index(self)

    def algorithm(self) -> hashes.HashAlgorithm:
        if self is Digest.SHA1:
            return hashes.SHA1()  # noqa: S303 (SCEP clients such as micromdm scepclient sign with it)
        if self is Digest.SHA224:
            return hashes.SHA224()
        if self is Digest.SHA256:
            return hashes.SHA256()
        if self is Digest.SHA384:
            return hashes.SHA384()
        return hashes.SHA512()

    @classmethod
    def from_oid(cls, oid: str) -> Digest | None:
        return next((digest for digest in cls if digest.oid == oid), None)


@dataclass(frozen=True)
class ReplyTo:
    """What a CertRep to this request needs: the transaction, the nonce to echo as recipientNonce, the
    certificate the request was signed with (a SUCCESS is enveloped to its key), and the algorithms to answer with
    (never weaker than the request's own)."""

    transaction_id: str
    sender_nonce: bytes
    signer: x509.Certificate
    digest: Digest
    cipher: Cipher | None  # None until the request's envelope was opened (a FAILURE or PENDING needs none)


class ScepError(InvalidRequestError):
    """A refusal: `fail_info` for the CertRep FAILURE; `reply` when there is a requester to answer (else HTTP 400).

    `detail` is safe to show and to log: it never carries decrypted content, a challenge or key material."""

    title = "SCEP request refused"

    def __init__(self, fail_info: FailInfo, detail: str, reply: ReplyTo | None = None) -> None:
        super().__init__(detail)
        self.fail_info = fail_info
        self.reply = reply

    def answering(self, reply: ReplyTo) -> ScepError:
        """The same refusal, now with someone to answer (the signed attributes were read after it was raised)."""
        error = ScepError(self.fail_info, self.detail, reply if self.reply is None else self.reply)
        return error.with_traceback(self.__traceback__)

    def __repr__(self) -> str:
        return f"ScepError({self.fail_info.name}, {self.detail!r}, reply={self.reply is not None})"


@dataclass(frozen=True)
class RegistrationAuthority:
    """The RA certificate SCEP clients encrypt to and whose key signs every CertRep (RSA: digitalSignature and
    keyEncipherment), issued by the CA the certificates come from."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    def __repr__(self) -> str:
        return f"RegistrationAuthority({self.certificate.subject.rfc4514_string()!r})"
