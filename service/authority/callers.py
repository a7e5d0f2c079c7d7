"""Who is calling: a bearer token, the holder of a client certificate, or a local command."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509

from service import metrics
from service.ca.inspect import CertificateSummary
from service.errors import PermissionDeniedError, ScopeDeniedError

SCOPES = ("admin", "issue", "revoke", "read")
TOKEN_PREFIX = "pca_"  # noqa: S105 (a marker, not a secret)


def hash_secret(secret: str) -> str:
    """SHA-256: the secret has 256 random bits, so a slow password hash would add nothing."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class TokenCaller:
    token_id: str
    scope: str
    cn: str | None = None  # set: an enrollment token bound to exactly these names
    names: frozenset[str] = frozenset()
    profile: str | None = None
    address: str | None = None
    console: bool = False  # a person in the web console, logged in with this token (the actor stays the token)

    @property
    def label(self) -> str:
        return f"token:{self.token_id}"

    @property
    def is_enrollment(self) -> bool:
        return self.cn is not None


@dataclass(frozen=True)
class ClientIdentity:
    """The holder of a client certificate that passed the TLS handshake and our revocation check."""

    certificate: x509.Certificate
    summary: CertificateSummary
    profile: str
    address: str | None = None
    # set when a renewal token (authority.renewal) vouched for the holder instead of a TLS handshake: POST /csr
    # only, and the jti is spent in the transaction of the certificate it pays for
    renewal_jti: str | None = None
    renewal_expires_at: dt.datetime | None = None

    @property
    def label(self) -> str:
        return f"cert:{self.summary.serial}"


@dataclass(frozen=True)
class LocalCaller:
    """A command run on the CA host itself (it can read the CA key anyway)."""

    name: str
    address: str | None = None

    @property
    def label(self) -> str:
        return f"local:{self.name}"


@dataclass(frozen=True)
class AcmeCaller:
    """An ACME account (service.acme) that proved control of exactly `names` (the order's identifiers)."""

    account_id: str
    names: frozenset[str] = frozenset()
    address: str | None = None

    @property
    def label(self) -> str:
        return f"acme:{self.account_id}"


Caller = TokenCaller | ClientIdentity | LocalCaller | AcmeCaller

# how a certificate came in (certificates.issued_via), next to who asked for it (issued_by, the caller's label)
ISSUED_VIA = ("token", "enrollment", "renewal", "acme", "console", "local")


def issued_via(caller: Caller) -> str:
    if isinstance(caller, TokenCaller):
        return "console" if caller.console else "enrollment" if caller.is_enrollment else "token"
    if isinstance(caller, ClientIdentity):
        return "renewal"
    if isinstance(caller, AcmeCaller):
        return "acme"
    return "local"


def describe_issuer(issued_by: str | None, via: str | None) -> str:
    """Who issued a certificate, in a person's words: `enrollment token 1a2b…`, `ACME account 7`, ..."""
    if not issued_by:
        return "not recorded"
    _, _, who = issued_by.partition(":")
    words = {
        "token": f"API token {who}",
        "enrollment": f"enrollment token {who}",
        "renewal": f"renewal of certificate {who}",
        "acme": f"ACME account {who}",
        "console": f"the web console, logged in with token {who}",
        "local": f"`pocketca {who}` on the CA host",
    }
    return words.get(via or "", issued_by)


def require_scope(caller: Caller, *scopes: str) -> None:
    """Local commands may do anything; tokens need one of `scopes`; certificate holders are checked by the caller."""
    if isinstance(caller, LocalCaller):
        return
    if isinstance(caller, ClientIdentity):
        raise PermissionDeniedError("a client certificate does not grant this; use a token")
    if isinstance(caller, AcmeCaller):  # the ACME layer checked the account's authorizations
        if not {"issue", "revoke"} & set(scopes):
            raise PermissionDeniedError("an ACME account may only issue and revoke")
        return
    if caller.scope not in scopes:  # enrollment tokens have scope "issue": they only ever issue
        metrics.token_refused("scope")
        raise ScopeDeniedError(caller.scope)
