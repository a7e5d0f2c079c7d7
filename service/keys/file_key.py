"""The CA key in a PEM file, kept in one place. The key store signs for its callers; nobody else holds the key."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509 import ocsp

from service.ca.crl import is_tbs_certlist
from service.ca.keys import PrivateKey, dump_private_key, load_private_key, signature_hash
from service.ca.leaf import is_tbs_certificate
from service.keys.files import write_private_file


class FileKeyStore:
    """A PEM key file, PKCS#8 encrypted when a passphrase is configured."""

    def __init__(self, key: PrivateKey) -> None:
        self._key = key
        self._hash = signature_hash(key)

    @classmethod
    def open(cls, path: Path, passphrase: bytes | None) -> FileKeyStore:
        return cls(load_private_key(path.read_bytes(), passphrase))

    @classmethod
    def create(cls, path: Path, key: PrivateKey, passphrase: bytes | None) -> FileKeyStore:
        write_private_file(path, dump_private_key(key, passphrase))
        return cls(key)

    def public_key(self) -> CertificatePublicKeyTypes:
        return self._key.public_key()

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        return builder.sign(self._key, self._hash)

    def sign_crl(self, builder: x509.CertificateRevocationListBuilder) -> x509.CertificateRevocationList:
        return builder.sign(self._key, self._hash)

    def sign_ocsp(self, builder: ocsp.OCSPResponseBuilder, responder: x509.Certificate) -> ocsp.OCSPResponse:
        return builder.responder_id(ocsp.OCSPResponderEncoding.HASH, responder).sign(self._key, self._hash)

    def sign_crl_tbs(self, tbs_certlist: bytes) -> bytes:
        """What `sign_crl` would sign, signed the same way; only ever a v2 TBSCertList, so these bytes can never
        be passed off as a certificate, CSR or OCSP response."""
        if not is_tbs_certlist(tbs_certlist):
            raise ValueError("not a DER v2 TBSCertList")
        return self._sign_tbs(tbs_certlist)

    def sign_tbs_certificate(self, tbs_certificate: bytes) -> bytes:
        """What `sign_certificate` would sign, signed the same way; only ever a v3 TBSCertificate."""
        if not is_tbs_certificate(tbs_certificate):
            raise ValueError("not a DER v3 TBSCertificate")
        return self._sign_tbs(tbs_certificate)

    def _sign_tbs(self, tbs: bytes) -> bytes:
        key = self._key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(tbs)
        assert self._hash is not None
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(tbs, ec.ECDSA(self._hash))
        if isinstance(key, rsa.RSAPrivateKey):  # what the builders' sign does for RSA
            return key.sign(tbs, padding.PKCS1v15(), self._hash)
        raise TypeError(f"cannot sign with {type(key).__name__}")

    def close(self) -> None:
        """Nothing to let go: the key is in this process's memory (a token's store closes its session)."""

    def __repr__(self) -> str:  # never show key material, even in a debugger or traceback
        return f"<FileKeyStore {type(self._key).__name__}>"
