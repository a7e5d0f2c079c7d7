"""Renewal tokens: how a certificate without clientAuth (profile `server`) proves it holds its key.

A compact JWS (RFC 7515) signed by the certificate's own key, the certificate in the `x5c` header, and the
claims `aud` (`<public url>/csr`), `iat`, `exp` (at most 5 minutes after `iat`), `jti` (single use) and `sub`
(the serial), as step-ca's renewal tokens. PyJWT verifies the signature and the audience (it is well kept,
built on pyca/cryptography, and makes the caller name the algorithms it accepts). The algorithm is never taken
from the header: it follows from the certificate's key type (ES256 for P-256, ES384 for P-384, RS256 for RSA,
EdDSA for Ed25519), and a header that says anything else is refused before any signature is checked.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding

from service.ca.inspect import format_serial, parse_serial
from service.errors import AuthenticationError
from service.inputs import load_json

MAX_LIFETIME = dt.timedelta(minutes=5)
CLOCK_SKEW = dt.timedelta(seconds=60)  # how far in the future `iat` may be, and how long past `exp` a jti is kept
MAX_TOKEN_BYTES = 16 * 1024
MAX_JTI_LENGTH = 128


@dataclass(frozen=True)
class RenewalClaims:
    """What a verified token says; the certificate is the one in `x5c`, not yet checked against our records."""

    certificate_der: bytes
    serial: str
    jti: str
    expires_at: dt.datetime


def algorithm_for(public_key: CertificatePublicKeyTypes) -> str | None:
    """The one JWS algorithm a key of this type signs renewal tokens with; None: no renewal token for it."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ES256", "secp384r1": "ES384"}.get(public_key.curve.name)
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    return None


def is_renewal_token(token: str) -> bool:
    """A compact JWS has three dot-separated parts (API tokens are `pca_<id>_<secret>`)."""
    return token.count(".") == 2 and not token.startswith("pca_")


def _header(token: str) -> dict[str, Any]:
    """The protected header, unverified (what it names is checked before anything in it is believed)."""
    header = _json_part(token, 0)
    if not isinstance(header, dict):
        raise AuthenticationError("the renewal token is not a compact JWS")
    return header


def _json_part(token: str, index: int) -> Any:
    """A JSON part of the compact JWS (0 the header, 1 the claims), read as every JSON a client sends."""
    parts = token.split(".")
    segment = parts[index] if index < len(parts) else ""
    try:
        return load_json(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        raise AuthenticationError("the renewal token is not a compact JWS with JSON header and claims") from None


def verify_renewal_token(token: str, *, audience: str, now: dt.datetime) -> RenewalClaims:
    """Checks the token's form, signature, audience and times; raises AuthenticationError (401) saying why."""
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthenticationError("the renewal token is too long")
    header = _header(token)
    certificate_der = _leaf_from_x5c(header.get("x5c"))
    try:
        certificate = x509.load_der_x509_certificate(certificate_der)
    except ValueError:
        raise AuthenticationError("the renewal token's x5c does not hold a DER certificate") from None
    public_key = certificate.public_key()
    expected = algorithm_for(public_key)
    if expected is None:
        raise AuthenticationError("this certificate's key type has no renewal token algorithm; renew over mTLS")
    if header.get("alg") != expected:
        raise AuthenticationError(f"the renewal token must be signed with {expected} for this certificate's key")
    if "crit" in header or "b64" in header:  # RFC 7515 4.1.11, RFC 7797: nothing a renewal token needs
        raise AuthenticationError("the renewal token has header parameters we do not accept (crit, b64)")
    _json_part(token, 1)  # the claims: PyJWT parses them with json.loads, which a deep nesting would crash
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=public_key,  # type: ignore[arg-type]
            algorithms=[expected],
            audience=audience,
            options={"require": ["aud", "iat", "exp", "jti", "sub"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.InvalidAudienceError:
        raise AuthenticationError(f"the renewal token is addressed elsewhere: its aud must be {audience}") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthenticationError(f"the renewal token has no {exc.claim!r} claim") from None
    except jwt.InvalidSignatureError:
        raise AuthenticationError("the renewal token's signature does not verify with its certificate's key") from None
    except jwt.InvalidTokenError as exc:
        raise AuthenticationError(f"the renewal token is not valid: {exc}") from None
    issued_at, expires_at = _time(claims, "iat"), _time(claims, "exp")
    if expires_at - issued_at > MAX_LIFETIME or expires_at <= issued_at:
        raise AuthenticationError("a renewal token lives at most 5 minutes (exp - iat)")
    if issued_at > now + CLOCK_SKEW:
        raise AuthenticationError("the renewal token is issued in the future (check the clock)")
    if expires_at <= now:
        raise AuthenticationError("the renewal token has expired")
    jti, subject = claims["jti"], claims["sub"]
    if not isinstance(jti, str) or not 1 <= len(jti) <= MAX_JTI_LENGTH:
        raise AuthenticationError(f"the renewal token's jti must be a string of 1 to {MAX_JTI_LENGTH} characters")
    if not isinstance(subject, str) or _serial_number(subject) != certificate.serial_number:
        raise AuthenticationError("the renewal token's sub is not the serial of its certificate")
    serial = format_serial(certificate.serial_number)
    return RenewalClaims(certificate_der=certificate_der, serial=serial, jti=jti, expires_at=expires_at)


def _serial_number(text: str) -> int | None:
    try:
        return parse_serial(text)
    except ValueError:
        return None


def _leaf_from_x5c(x5c: object) -> bytes:
    if not isinstance(x5c, list) or not x5c or not isinstance(x5c[0], str):
        raise AuthenticationError("the renewal token has no x5c header with the certificate")
    try:
        return base64.b64decode(x5c[0], validate=True)  # RFC 7515 4.1.6: standard base64, not base64url
    except (binascii.Error, ValueError):
        raise AuthenticationError("the renewal token's x5c is not base64") from None


def _time(claims: dict[str, Any], name: str) -> dt.datetime:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthenticationError(f"the renewal token's {name} must be a NumericDate")
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise AuthenticationError(f"the renewal token's {name} is out of range") from None


def build_renewal_token(
    key: Any, certificate: x509.Certificate, *, audience: str, now: dt.datetime, jti: str, lifetime: int = 300
) -> str:
    """What `pocketca renew` sends for a certificate without clientAuth (the key is the certificate's own)."""
    algorithm = algorithm_for(certificate.public_key())
    if algorithm is None:
        raise ValueError("this certificate's key type has no renewal token algorithm")
    issued_at = int(now.timestamp())
    claims = {
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at + min(lifetime, int(MAX_LIFETIME.total_seconds())),
        "jti": jti,
        "sub": format_serial(certificate.serial_number),
    }
    x5c = [base64.b64encode(certificate.public_bytes(Encoding.DER)).decode()]
    return jwt.encode(claims, key, algorithm=algorithm, headers={"x5c": x5c})
