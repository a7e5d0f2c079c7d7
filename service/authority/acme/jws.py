"""Verifying ACME requests (RFC 8555 §6.2–6.5): flattened JWS, the algorithms our key types use, no header
parameter we do not understand (`crit`, `b64`), single-use nonces (acme.nonces), `url` equal to the request
URL, and `jwk` only where the protocol allows it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from josepy.jwk import JWK

from service.authority.acme.problems import AcmeProblem, malformed
from service.inputs import load_json

ALGORITHMS = ("ES256", "ES384", "RS256", "EdDSA")
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
_CURVES = {"ES256": ("secp256r1", hashes.SHA256), "ES384": ("secp384r1", hashes.SHA384)}


def b64decode(text: object, what: str) -> bytes:
    if not isinstance(text, str) or "=" in text:
        raise malformed(f"{what} must be unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise malformed(f"{what} is not base64url") from None


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- keys ------------------------------------------------------------------------------------------------


def load_jwk(jwk: object) -> PublicKey:
    """A public JWK (RSA, EC P-256/P-384, OKP Ed25519) as a cryptography key; anything else is badPublicKey."""
    if not isinstance(jwk, dict):
        raise AcmeProblem("badPublicKey", "jwk must be a JSON object")
    if any(k in jwk for k in ("d", "p", "q", "dp", "dq", "qi", "k")):
        raise AcmeProblem("badPublicKey", "jwk must be a public key; never send a private key")
    kty = jwk.get("kty")
    try:
        if kty == "OKP":
            if jwk.get("crv") != "Ed25519":
                raise AcmeProblem("badPublicKey", "OKP keys must be Ed25519")
            return ed25519.Ed25519PublicKey.from_public_bytes(b64decode(jwk.get("x"), "jwk.x"))
        if kty in ("RSA", "EC"):
            key = JWK.from_json(jwk).key  # type: ignore[attr-defined]
            key = getattr(key, "_wrapped", key)  # josepy wraps keys to make them comparable
        else:
            raise AcmeProblem("badPublicKey", f"unsupported key type {kty!r}; use EC, RSA or OKP (Ed25519)")
    except AcmeProblem:
        raise
    except Exception:  # josepy raises several types for a broken key
        raise AcmeProblem("badPublicKey", "jwk is not a valid public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise AcmeProblem("badPublicKey", f"RSA keys must have at least 2048 bits, not {key.key_size}")
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ("secp256r1", "secp384r1"):
        return key
    raise AcmeProblem("badPublicKey", "EC keys must be on P-256 or P-384")


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 (and RFC 8037 for OKP): SHA-256 of the required members, sorted, without whitespace."""
    members = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in members}, separators=(",", ":"), sort_keys=True)
    return b64encode(hashlib.sha256(canonical.encode()).digest())


def public_jwk(jwk: dict[str, Any]) -> dict[str, Any]:
    """Only the members that define the key (what we store and compare)."""
    members = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}[jwk["kty"]]
    return {k: jwk[k] for k in members}


def verify_signature(alg: str, key: PublicKey, signing_input: bytes, signature: bytes) -> bool:
    try:
        if alg in _CURVES:
            curve, digest = _CURVES[alg]
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != curve:
                return False
            size = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                return False
            der = encode_dss_signature(int.from_bytes(signature[:size]), int.from_bytes(signature[size:]))
            key.verify(der, signing_input, ec.ECDSA(digest()))
        elif alg == "RS256":
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "EdDSA":
            if not isinstance(key, ed25519.Ed25519PublicKey):
                return False
            key.verify(signature, signing_input)
        else:
            return False
    except InvalidSignature:
        return False
    return True


# --- the request -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedMessage:
    protected: dict[str, Any]
    payload_b64: str
    signature: bytes

    @property
    def signing_input(self) -> bytes:
        return f"{self.header_b64}.{self.payload_b64}".encode()

    header_b64: str = ""

    @property
    def is_post_as_get(self) -> bool:
        return self.payload_b64 == ""

    def payload(self) -> dict[str, Any]:
        """The JSON object payload; POST-as-GET (an empty payload) is not one."""
        if self.is_post_as_get:
            raise malformed("this request needs a JSON payload, not POST-as-GET")
        try:
            value = load_json(b64decode(self.payload_b64, "payload"))
        except ValueError as exc:
            raise malformed(f"the payload is not JSON we read: {exc}") from None
        if not isinstance(value, dict):
            raise malformed("the payload must be a JSON object")
        return value


def parse_jws(body: bytes) -> SignedMessage:
    """A flattened JWS JSON serialization with exactly one signature and only a protected header."""
    try:
        document = load_json(body)
    except ValueError as exc:
        raise malformed(f"the request body is not JSON (a flattened JWS) we read: {exc}") from None
    if not isinstance(document, dict) or set(document) - {"protected", "payload", "signature"}:
        raise malformed("send a flattened JWS: only 'protected', 'payload' and 'signature', no unprotected header")
    if not all(isinstance(document.get(k), str) for k in ("protected", "payload", "signature")):
        raise malformed("the JWS needs 'protected', 'payload' and 'signature' strings")
    try:
        protected = load_json(b64decode(document["protected"], "protected"))
    except ValueError as exc:
        raise malformed(f"the protected header is not JSON we read: {exc}") from None
    if not isinstance(protected, dict):
        raise malformed("the protected header must be a JSON object")
    signature = b64decode(document["signature"], "signature")
    b64decode(document["payload"], "payload")
    return SignedMessage(protected, document["payload"], signature, header_b64=document["protected"])


@dataclass(frozen=True)
class VerifiedRequest:
    message: SignedMessage
    url: str
    jwk: dict[str, Any] | None  # set when the request was signed with an embedded key
    kid: str | None
    key: PublicKey

    def payload(self) -> dict[str, Any]:
        return self.message.payload()

    @property
    def is_post_as_get(self) -> bool:
        return self.message.is_post_as_get


KeyLookup = Callable[[str], dict[str, Any]]  # kid -> the account's stored JWK (raises AcmeProblem)


class Nonces(Protocol):
    def accept(self, value: str) -> bool:
        """True for a live nonce this server issued, which becomes the request's to spend (acme.nonces)."""
        ...


def check_header(header: dict[str, Any], what: str = "the protected header") -> None:
    """RFC 7515 §4.1.11: a `crit` header names extensions the recipient must understand, and we understand none;
    `b64` (RFC 7797, an unencoded payload) is one of them. Either is refused, as go-jose refuses them."""
    if "crit" in header:
        raise malformed(f"{what} has 'crit': this server understands no critical header extension (RFC 7515 4.1.11)")
    if "b64" in header:
        raise malformed(f"{what} has 'b64': unencoded payloads (RFC 7797) are not supported")


def verify_request(
    body: bytes,
    *,
    url: str,
    nonces: Nonces,
    allow_jwk: bool,
    require_jwk: bool = False,
    lookup_kid: KeyLookup,
) -> VerifiedRequest:
    """Checks, in order: the shape, the algorithm, the url, the nonce, the key (jwk or kid) and the signature."""
    message = parse_jws(body)
    header = message.protected
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise AcmeProblem("badSignatureAlgorithm", f"alg {alg!r} is not supported; use one of {', '.join(ALGORITHMS)}")
    check_header(header)
    if header.get("url") != url:
        raise unauthorized_url(header.get("url"), url)
    nonce = header.get("nonce")
    if not isinstance(nonce, str) or not nonce:
        raise AcmeProblem("badNonce", "the protected header needs a nonce from newNonce")
    if not nonces.accept(nonce):
        raise AcmeProblem("badNonce", "the nonce is unknown, used or expired; retry with the Replay-Nonce given")
    has_jwk, has_kid = "jwk" in header, "kid" in header
    if has_jwk == has_kid:
        raise malformed("the protected header needs exactly one of 'jwk' and 'kid'")
    if has_jwk and not allow_jwk:
        raise malformed("this request must be signed by the account ('kid'), not an embedded 'jwk'")
    if has_kid and require_jwk:
        raise malformed("this request must carry the new key as 'jwk'")
    jwk: dict[str, Any] | None = None
    kid: str | None = None
    if has_jwk:
        key = load_jwk(header["jwk"])
        jwk = public_jwk(header["jwk"])
    else:
        kid = header["kid"]
        if not isinstance(kid, str):
            raise malformed("kid must be the account URL")
        key = load_jwk(lookup_kid(kid))
    if not verify_signature(alg, key, message.signing_input, message.signature):
        raise malformed("the JWS signature does not verify (or the alg does not fit the key)")
    return VerifiedRequest(message, url, jwk, kid, key)


def unauthorized_url(sent: object, url: str) -> AcmeProblem:
    return AcmeProblem("unauthorized", f"the JWS 'url' {sent!r} is not this request's URL {url!r}", status=401)


def verify_inner(message: SignedMessage, *, url: str) -> tuple[dict[str, Any], PublicKey]:
    """keyChange's inner JWS: signed by the new key, carried as jwk, same url, no nonce."""
    header = message.protected
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise AcmeProblem("badSignatureAlgorithm", f"inner alg {alg!r} is not supported")
    check_header(header, "the inner JWS's header")
    if header.get("url") != url:
        raise malformed("the inner JWS 'url' must equal the outer one")
    if "nonce" in header or "kid" in header or "jwk" not in header:
        raise malformed("the inner JWS carries the new key as 'jwk', and no nonce or kid")
    key = load_jwk(header["jwk"])
    if not verify_signature(alg, key, message.signing_input, message.signature):
        raise malformed("the inner JWS signature does not verify")
    return public_jwk(header["jwk"]), key


def verify_eab(binding: object, *, url: str, account_jwk: dict[str, Any], hmac_key_for: Callable[[str], bytes]) -> str:
    """RFC 8555 §7.3.4: a JWS over the account's JWK, MACed with the EAB key. Returns the EAB kid."""
    if not isinstance(binding, dict):
        raise malformed("externalAccountBinding must be a flattened JWS")
    message = parse_jws(json.dumps(binding).encode())
    header = message.protected
    digests = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
    alg = header.get("alg")
    if alg not in digests:
        raise AcmeProblem("badSignatureAlgorithm", "externalAccountBinding must use HS256, HS384 or HS512")
    check_header(header, "the externalAccountBinding's header")
    if "nonce" in header or header.get("url") != url:
        raise malformed("externalAccountBinding needs the newAccount 'url' and no nonce")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise malformed("externalAccountBinding needs the EAB 'kid'")
    try:
        inner = load_json(b64decode(message.payload_b64, "externalAccountBinding payload"))
        same_key = isinstance(inner, dict) and public_jwk(inner) == account_jwk
    except (ValueError, KeyError, UnicodeDecodeError):
        same_key = False
    if not same_key:
        raise malformed("externalAccountBinding must sign the account's own JWK")
    key = hmac_key_for(kid)
    expected = hmac.new(key, message.signing_input, digests[alg]).digest()
    if not hmac.compare_digest(expected, message.signature):
        raise unauthorized_eab()
    return kid


def unauthorized_eab() -> AcmeProblem:
    return AcmeProblem(
        "unauthorized", "the external account binding does not verify (wrong kid or HMAC key)", status=403
    )
