"""The CA key in a PKCS#11 token (an HSM, a smart card, SoftHSM), named by a `pkcs11:` URI (keys.pkcs11_uri).

The key never leaves the token: `Pkcs11KeyStore` signs for its callers as `FileKeyStore` does. cryptography signs
only with its own key objects, so each structure is encoded by cryptography with a stand-in key of the same type
(the to-be-signed bytes are the same for any key of that type and hash), the token signs those bytes, and the
stand-in's signature is swapped for the token's (service.ca.der). Each signature is checked against the token's
public key before it is used. The PIN is never logged, never in an error, and never in this object's repr.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import threading
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from service.ca import der
from service.ca.crl import is_tbs_certlist
from service.ca.keys import KeyType
from service.ca.leaf import is_tbs_certificate
from service.ca.ocsp import responder_key_hash
from service.errors import ConfigurationError
from service.keys.pkcs11_uri import DEFAULT_OBJECT, MISSING_EXTRA, Pkcs11URI

_USERS: dict[str, int] = {}  # open key stores per module path: the last to close finalizes the module
_USERS_LOCK = threading.Lock()


@functools.cache
def _stand_in(kind: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """A throwaway key per type, made once per process: it only makes cryptography encode; its signature is
    always replaced and never leaves this module."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP384R1() if kind == "p384" else ec.SECP256R1())


@functools.cache
def _stand_in_certificate(kind: str) -> x509.Certificate:
    key = _stand_in(kind)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stand-in")])
    now = dt.datetime.now(dt.UTC)
    builder = x509.CertificateBuilder(
        issuer_name=name,
        subject_name=name,
        public_key=key.public_key(),
        serial_number=1,
        not_valid_before=now,
        not_valid_after=now + dt.timedelta(days=1),
    )
    return builder.sign(key, hashes.SHA256())


def _replace_first(data: bytes, old: bytes, new: bytes) -> bytes:
    """`data` with its leading `old` (the same length as `new`) swapped: the outer lengths stay right."""
    if len(old) != len(new) or not data[data.find(old) :].startswith(old):
        raise ValueError("cannot swap parts of different lengths")
    return data.replace(old, new, 1)


class Pkcs11KeyStore:
    """One logged-in session on the token, used by one thread at a time."""

    def __init__(self, uri: Pkcs11URI, *, create: KeyType | None = None) -> None:
        """Opens the token and finds the key; with `create`, makes it (of that type) when it is not there."""
        try:
            import pkcs11
            from pkcs11 import exceptions as p11
        except ImportError:  # the optional dependency: say which extra brings it, not a traceback
            raise ConfigurationError(MISSING_EXTRA) from None

        self._uri = uri
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._lib = pkcs11.lib(uri.module_path)
        except (p11.PKCS11Error, OSError):
            raise ConfigurationError(f"cannot load the PKCS#11 module {uri.module_path}") from None
        with _USERS_LOCK:
            _USERS[uri.module_path] = _USERS.get(uri.module_path, 0) + 1
        self._session: Any = None
        try:
            self._open(uri, create)
        except BaseException:
            self.close()
            raise
        self._pid = os.getpid()

    def _open(self, uri: Pkcs11URI, create: KeyType | None) -> None:
        from pkcs11 import exceptions as p11

        where = f"token {uri.token!r}"
        try:
            token = self._lib.get_token(token_label=uri.token)
        except p11.NoSuchToken:
            raise ConfigurationError(f"no PKCS#11 {where} in {uri.module_path}: check token= in the key URI") from None
        except p11.MultipleTokensReturned:
            raise ConfigurationError(f"more than one PKCS#11 {where}: labels must be unique") from None
        pin = uri.pin()
        try:
            self._session = token.open(rw=create is not None, user_pin=pin)
        except p11.UserAlreadyLoggedIn:  # another session of this process logged in: login is per application
            self._session = token.open(rw=create is not None)
        except (p11.PinIncorrect, p11.PinLenRange):
            raise ConfigurationError(f"the PKCS#11 PIN for {where} is wrong (from the key URI's pin source)") from None
        except p11.PinLocked:
            raise ConfigurationError(f"the PKCS#11 PIN for {where} is locked: unblock it with the SO PIN") from None
        except p11.PKCS11Error as exc:
            raise ConfigurationError(f"cannot log in to PKCS#11 {where}: {type(exc).__name__}") from None
        del pin
        self._private, public = self._find_or_create(create)
        self._public = self._load_public(public)
        self._check_type()

    def _check_type(self) -> None:
        if isinstance(self._public, ec.EllipticCurvePublicKey):
            self._kind = "p384" if self._public.curve.name == "secp384r1" else "p256"
            if self._public.curve.name not in ("secp256r1", "secp384r1"):
                raise ConfigurationError(f"the PKCS#11 key is on {self._public.curve.name}: use P-256 or P-384")
            self._hash: hashes.SHA256 | hashes.SHA384 = hashes.SHA384() if self._kind == "p384" else hashes.SHA256()
        elif isinstance(self._public, rsa.RSAPublicKey):
            if self._public.key_size < 2048:
                raise ConfigurationError("the PKCS#11 RSA key is shorter than 2048 bits")
            self._kind, self._hash = "rsa", hashes.SHA256()
        else:
            raise ConfigurationError("the PKCS#11 key must be EC (P-256, P-384) or RSA")

    def _find_or_create(self, create: KeyType | None) -> tuple[Any, Any]:
        from pkcs11 import Attribute, Mechanism, ObjectClass
        from pkcs11 import KeyType as P11KeyType
        from pkcs11 import exceptions as p11
        from pkcs11.util.ec import encode_named_curve_parameters

        search: dict[str, Any] = {}
        if self._uri.object is not None:
            search["label"] = self._uri.object
        if self._uri.id is not None:
            search["id"] = self._uri.id
        if not search:
            search["label"] = DEFAULT_OBJECT
        try:
            private = self._session.get_key(object_class=ObjectClass.PRIVATE_KEY, **search)
            public = self._session.get_key(object_class=ObjectClass.PUBLIC_KEY, **search)
            return private, public
        except p11.NoSuchKey:
            if create is None:
                raise ConfigurationError(
                    f"no key {search.get('label', '')!r} in PKCS#11 token {self._uri.token!r}:"
                    " `pocketca init --key-uri` makes it"
                ) from None
        except p11.MultipleObjectsReturned:
            raise ConfigurationError("the PKCS#11 key URI matches more than one key: add object= or id=") from None
        label = search.get("label", DEFAULT_OBJECT)
        key_id = search.get("id", label.encode())
        common = {Attribute.TOKEN: True, Attribute.LABEL: label, Attribute.ID: key_id}
        private_template = {**common, Attribute.PRIVATE: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}
        if create.startswith("rsa"):
            bits = int(create.removeprefix("rsa"))
            public, private = self._session.generate_keypair(
                P11KeyType.RSA, bits, store=True, label=label, id=key_id,
                public_template=common, private_template=private_template,
            )  # fmt: skip
            return private, public
        if create not in ("p256", "p384"):
            raise ConfigurationError(f"a PKCS#11 CA key is P-256, P-384 or RSA, not {create}")
        curve = "secp384r1" if create == "p384" else "secp256r1"
        params = self._session.create_domain_parameters(
            P11KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(curve)}, local=True
        )
        public, private = params.generate_keypair(
            store=True, label=label, id=key_id, mechanism=Mechanism.EC_KEY_PAIR_GEN,
            public_template=common, private_template=private_template,
        )  # fmt: skip
        return private, public

    @staticmethod
    def _load_public(public: Any) -> CertificatePublicKeyTypes:
        from pkcs11 import KeyType as P11KeyType
        from pkcs11.util.ec import encode_ec_public_key
        from pkcs11.util.rsa import encode_rsa_public_key

        if public.key_type == P11KeyType.EC:
            return serialization.load_der_public_key(encode_ec_public_key(public))  # type: ignore[return-value]
        if public.key_type == P11KeyType.RSA:
            return serialization.load_der_public_key(encode_rsa_public_key(public))  # type: ignore[return-value]
        raise ConfigurationError("the PKCS#11 key must be EC (P-256, P-384) or RSA")

    @property
    def uri(self) -> Pkcs11URI:
        return self._uri

    # --- what a Signer does (service.ca.issue.Signer) --------------------------------------------------------

    def public_key(self) -> CertificatePublicKeyTypes:
        return self._public

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        draft = builder.sign(_stand_in(self._kind), self._hash).public_bytes(serialization.Encoding.DER)
        return x509.load_der_x509_certificate(der.with_signature(draft, self._sign(der.tbs_of(draft))))

    def sign_crl(self, builder: x509.CertificateRevocationListBuilder) -> x509.CertificateRevocationList:
        draft = builder.sign(_stand_in(self._kind), self._hash).public_bytes(serialization.Encoding.DER)
        return x509.load_der_x509_crl(der.with_signature(draft, self._sign(der.tbs_of(draft))))

    def sign_crl_tbs(self, tbs_certlist: bytes) -> bytes:
        if not is_tbs_certlist(tbs_certlist):
            raise ValueError("not a DER v2 TBSCertList")
        return self._sign(tbs_certlist)

    def sign_tbs_certificate(self, tbs_certificate: bytes) -> bytes:
        if not is_tbs_certificate(tbs_certificate):
            raise ValueError("not a DER v3 TBSCertificate")
        return self._sign(tbs_certificate)

    def sign_ocsp(self, builder: ocsp.OCSPResponseBuilder, responder: x509.Certificate) -> ocsp.OCSPResponse:
        """cryptography insists the signing key be the responder certificate's: it signs as a stand-in certificate,
        whose key hash (ResponderID byKey, 20 bytes) is then replaced by the responder's, same length."""
        stand_in = _stand_in_certificate(self._kind)
        draft = (
            builder.responder_id(ocsp.OCSPResponderEncoding.HASH, stand_in)
            .sign(_stand_in(self._kind), self._hash)
            .public_bytes(serialization.Encoding.DER)
        )
        _, basic, _ = der.basic_ocsp_response(draft)
        tbs = der.tbs_of(basic)
        theirs, ours = (b"\xa2\x16\x04\x14" + responder_key_hash(c) for c in (stand_in, responder))
        if tbs.count(theirs) != 1:
            raise RuntimeError("cannot find the responder's key hash in the OCSP response")
        tbs = tbs.replace(theirs, ours)
        basic = _replace_first(basic, der.tbs_of(basic), tbs)
        signed = der.with_signature(basic, self._sign(tbs))
        return ocsp.load_der_ocsp_response(der.ocsp_with_basic(draft, signed))

    def _sign(self, data: bytes) -> bytes:
        """The token's signature over `data`, DER as X.509 wants it, checked before it is returned."""
        from pkcs11 import Mechanism

        if os.getpid() != self._pid:
            raise RuntimeError("a PKCS#11 session cannot be used after fork: open the key store in the worker")
        with self._lock:
            if isinstance(self._public, ec.EllipticCurvePublicKey):
                digest = hashes.Hash(self._hash)
                digest.update(data)
                raw = self._private.sign(digest.finalize(), mechanism=Mechanism.ECDSA)  # r || s, each padded
                half = len(raw) // 2
                signature = encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
            else:
                signature = self._private.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS)
        try:
            if isinstance(self._public, ec.EllipticCurvePublicKey):
                self._public.verify(signature, data, ec.ECDSA(self._hash))
            else:
                assert isinstance(self._public, rsa.RSAPublicKey)
                self._public.verify(signature, data, padding.PKCS1v15(), self._hash)
        except InvalidSignature:
            raise RuntimeError("the PKCS#11 token returned a signature that does not verify") from None
        return bytes(signature)

    def close(self) -> None:
        """Closes the session; the last store of a module lets the module go (C_Finalize), so a process forked
        after this (uvicorn's workers) starts the module afresh."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._session is not None:
                    self._session.close()
                    self._session = None
            finally:
                with _USERS_LOCK:
                    left = _USERS.get(self._uri.module_path, 1) - 1
                    _USERS[self._uri.module_path] = max(left, 0)
                if left <= 0 and self._lib.initialized:
                    self._lib.finalize()

    def __repr__(self) -> str:
        return f"<Pkcs11KeyStore {self._uri.redacted()}>"
