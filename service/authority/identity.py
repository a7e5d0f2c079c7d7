"""Who is calling, from what the TLS layer verified or a renewal token: a certificate we issued, not revoked,
within its validity. Every request asks (the hot path's one indexed DB-API read)."""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from service import metrics
from service.authority.callers import ClientIdentity
from service.authority.renewal import verify_renewal_token
from service.ca.inspect import CertificateSummary, has_extended_key_usage, summarize
from service.db import certificates as certificate_rows
from service.db import renewals
from service.errors import AuthenticationError, PermissionDeniedError, RevokedCertificateError, ServiceError

if TYPE_CHECKING:
    from service.authority.state import AuthorityState

REPLAYED = "the renewal token was used already (each jti is good once)"
log = logging.getLogger("pocketca.auth")


def identify_client(authority: AuthorityState, der: bytes, address: str | None) -> ClientIdentity:
    """A certificate the TLS layer verified; refused here if revoked or not issued by us."""
    certificate, summary, client_auth = _parse_client_certificate(der)
    # every request: a revocation is refused at once, in every worker (the hot path's DB-API read)
    state = certificate_rows.identity_state(authority.db, summary.serial)
    if state is None or state[2] != summary.fingerprint_sha256:  # the exact certificate we issued
        raise PermissionDeniedError("the client certificate was not issued by this pocketca")
    status, profile, _ = state
    if status == "revoked":
        raise RevokedCertificateError(summary.serial)
    if not summary.not_before <= authority.clock() <= summary.not_after:
        raise PermissionDeniedError("the client certificate is expired or not yet valid")
    if not client_auth:
        raise PermissionDeniedError("the client certificate is not for client authentication")
    return ClientIdentity(certificate, summary, profile, address)


def authenticate_renewal_token(authority: AuthorityState, token: str, address: str | None) -> ClientIdentity:
    """A renewal token (authority.renewal) for POST /csr: the checks of a client certificate (issued by us, the
    exact certificate, not revoked, within its validity) except clientAuth, and a jti not yet spent (it is
    spent with the certificate it pays for).

    Until the signature verifies with the key of a certificate we issued, nobody is authenticated: anyone can
    put any public certificate in x5c. Those refusals are logged and counted, never audited under the
    certificate the token names (nor written at all: a flood of them must not become a flood of rows). The
    later ones (revoked, expired, replayed) come from the certificate's holder, and are audited as such."""
    now = authority.clock()
    try:
        claims = verify_renewal_token(token, audience=f"{authority.public_url}/csr", now=now)
        certificate, summary, _ = _parse_client_certificate(claims.certificate_der)
        state = certificate_rows.identity_state(authority.db, summary.serial)
        if state is None or state[2] != summary.fingerprint_sha256:
            raise PermissionDeniedError("the renewal token's certificate was not issued by this pocketca")
    except ServiceError as exc:
        metrics.renewal_token_refused("unauthenticated")
        log.info("renewal token refused before authentication: %s (client %s)", exc.detail, address or "-")
        raise
    status, profile, _ = state
    holder = ClientIdentity(certificate, summary, profile, address)
    try:
        if status == "revoked":
            metrics.renewal_token_refused("revoked")
            raise RevokedCertificateError(summary.serial)
        if not summary.not_before <= now <= summary.not_after:
            metrics.renewal_token_refused("expired")
            raise PermissionDeniedError("the renewal token's certificate is expired or not yet valid")
        if renewals.is_used(authority.db, summary.serial, claims.jti):
            metrics.renewal_token_refused("replayed")
            raise AuthenticationError(REPLAYED)
    except ServiceError as exc:
        authority.audit.refused("certificate.renew", holder, exc.detail, serial=summary.serial)
        raise
    return dataclasses.replace(holder, renewal_jti=claims.jti, renewal_expires_at=claims.expires_at)


@functools.lru_cache(maxsize=4096)
def _parse_client_certificate(der: bytes) -> tuple[x509.Certificate, CertificateSummary, bool]:
    """Parsing is the same for every request on a keep-alive connection: done once per certificate."""
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        raise AuthenticationError("the client certificate cannot be read") from None
    client_auth = has_extended_key_usage(certificate, ExtendedKeyUsageOID.CLIENT_AUTH)
    return certificate, summarize(certificate), client_auth
