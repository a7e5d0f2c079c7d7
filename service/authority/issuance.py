"""Issuance, one pipeline: authenticate → policy → sign → record → audit. Each entry point (a CSR from a token
or a certificate holder renewing, an ACME finalize, a key made here for the service or `pocketca issue`, a
PKCS#12 bundle) configures it with an `Entry`; the steps, the refusals' audit and metrics, and the rule that a
certificate is committed (with the token use it spent and its audit row) before it is returned, are here once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ec

from service import metrics
from service.authority.callers import AcmeCaller, Caller, ClientIdentity, issued_via
from service.authority.identity import REPLAYED
from service.authority.policy import (
    acme_context,
    acme_request,
    caller_context,
    known_label,
    request_for_key,
    request_from_csr,
)
from service.authority.renewal import CLOCK_SKEW
from service.authority.values import IssuedCertificate
from service.ca.constraints import constraint_violations
from service.ca.csr import CertificateRequest
from service.ca.inspect import summarize_issued
from service.ca.issue import random_serial_number
from service.ca.leaf import sign_leaf
from service.ca.pkcs12 import MIN_PASSWORD_LENGTH
from service.ca.policy import PolicyContext, decide
from service.ca.profiles import Profile
from service.db import certificates as certificate_rows
from service.db import renewals
from service.db.sql import Transaction
from service.errors import (
    AuthenticationError,
    PasswordTooShortError,
    PermissionDeniedError,
    PolicyError,
    ServiceError,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

    from service.authority.state import AuthorityState

Unit = Callable[[Transaction], None]


@dataclass(frozen=True)
class Entry:
    """How an entry point configures the pipeline: who asks, under which audit action, what it asks for."""

    caller: Caller
    action: str  # the audit action: certificate.issue, certificate.renew, pkcs12.issue
    request: Callable[[], CertificateRequest]  # the CSR read, or a request for a key made here
    policy: Callable[[], tuple[PolicyContext, Profile]]  # the caller's narrowing of the profile asked for
    profile: str | None = None  # as asked: the metrics label of a refusal
    validity_days: int | None = None
    outcome: str = "issued"  # the metrics label once issued
    authenticate: Callable[[], None] = lambda: None  # what this entry point checks of its caller first


def csr_entry(
    authority: AuthorityState, csr_data: bytes, caller: Caller, profile: str | None, validity_days: int | None
) -> Entry:
    """POST /csr: admin and issue tokens ask within the profile, enrollment tokens for exactly their names, a
    certificate holder (mTLS or a renewal token) renews its own names."""
    renewing = isinstance(caller, ClientIdentity)
    return Entry(
        caller,
        "certificate.renew" if renewing else "certificate.issue",
        lambda: request_from_csr(csr_data),
        lambda: caller_context(authority, caller, profile),
        profile,
        validity_days,
        "renewed" if renewing else "issued",
    )


def acme_entry(authority: AuthorityState, csr_data: bytes, caller: AcmeCaller, profile: str) -> Entry:
    """An ACME finalize: the CSR must name exactly the identifiers the account proved (`caller.names`)."""
    return Entry(
        caller,
        "certificate.issue",
        lambda: acme_request(csr_data),
        lambda: acme_context(authority, caller, profile),
        profile,
    )


def key_entry(
    authority: AuthorityState,
    public_key: CertificatePublicKeyTypes,
    cn: str,
    sans: list[str],
    caller: Caller,
    profile: str,
    validity_days: int | None,
    action: str = "certificate.issue",
) -> Entry:
    """Without a CSR, for keys made by this service (its own TLS key, `pocketca issue`, PKCS#12)."""
    return Entry(
        caller,
        action,
        lambda: request_for_key(public_key, cn, sans),
        lambda: caller_context(authority, caller, profile),
        profile,
        validity_days,
    )


def pkcs12_entry(
    authority: AuthorityState,
    caller: Caller,
    cn: str,
    sans: list[str],
    password: bytes,
    profile: str | None,
    validity_days: int | None,
) -> tuple[Entry, list[ec.EllipticCurvePrivateKey]]:
    """A PKCS#12 bundle: the key is made here (once the caller and the password pass), and lives only in the call
    and the encrypted bundle; the list holds it once the pipeline has made it."""
    keys: list[ec.EllipticCurvePrivateKey] = []

    def authenticate() -> None:
        if isinstance(caller, ClientIdentity):  # renewal is for CSRs; a server-made key needs a token
            raise PermissionDeniedError("PKCS#12 bundles need an admin, issue or enrollment token")
        if len(password) < MIN_PASSWORD_LENGTH:  # checked before any key is made
            raise PasswordTooShortError(MIN_PASSWORD_LENGTH)

    def request() -> CertificateRequest:
        keys.append(ec.generate_private_key(ec.SECP256R1()))
        return request_for_key(keys[0].public_key(), cn, sans)

    policy = lambda: caller_context(authority, caller, profile)  # noqa: E731
    entry = Entry(caller, "pkcs12.issue", request, policy, profile, validity_days, authenticate=authenticate)
    return entry, keys


class Issuance:
    def __init__(self, authority: AuthorityState) -> None:
        self.authority = authority  # read at each call: its clock, profiles and rate limit may change

    def issue(self, entry: Entry) -> IssuedCertificate:
        """The whole pipeline, in the caller's thread; the commit is shared with others (one fsync)."""
        with self._refusals(entry):
            unit, issued = self.prepare(entry)
            self.authority.writes.run(unit)  # committed before we return
        metrics.certificate(entry.outcome, issued.profile, entry.caller)
        return issued

    async def issue_async(self, entry: Entry) -> IssuedCertificate:
        """`issue` for the event loop: parsing and signing run here (they hold the GIL either way, and a hop to a
        thread costs more than they do); the loop serves others while the batch commits."""
        writes = self.authority.writes
        try:
            with writes.expect():
                unit, issued = self.prepare(entry)
            await writes.submit(unit)
        except ServiceError as exc:
            metrics.certificate("refused", known_label(self.authority.profiles, entry.profile), entry.caller)
            await writes.submit(self.authority.audit.refusal(entry.action, entry.caller, exc.detail))
            raise
        metrics.certificate(entry.outcome, issued.profile, entry.caller)
        return issued

    @contextlib.contextmanager
    def _refusals(self, entry: Entry) -> Iterator[None]:
        try:
            yield
        except ServiceError as exc:
            metrics.certificate("refused", known_label(self.authority.profiles, entry.profile), entry.caller)
            self.authority.audit.refused(entry.action, entry.caller, exc.detail)
            raise

    def prepare(self, entry: Entry) -> tuple[Unit, IssuedCertificate]:
        """Authenticates, decides and signs; the unit records and audits it. Nothing is returned to the client
        before the unit commits."""
        entry.authenticate()
        request = entry.request()
        ctx, profile = entry.policy()
        return self._sign(request, profile, entry, ctx)

    def _sign(
        self, request: CertificateRequest, profile: Profile, entry: Entry, ctx: PolicyContext
    ) -> tuple[Unit, IssuedCertificate]:
        authority = self.authority
        spec = decide(request, profile, entry.validity_days, ctx)
        if authority.constrained:  # before signing: no CA here signs past its name constraints
            refused = constraint_violations(spec.sans, authority.constrained)
            if refused:
                raise PolicyError(refused)
        now = authority.clock()
        # DER from the CA's template, the TBS signed once (ca.leaf; the same bytes build_leaf_builder describes)
        certificate, der = sign_leaf(
            authority.signer,
            spec,
            request.public_key,
            authority.ca_certificate,
            authority.signer.public_key(),
            serial_number=random_serial_number(),
            now=now,
            public_url=authority.publication_url,
            issuer_id=authority.issuer.id,
        )
        summary = summarize_issued(certificate, der, spec.subject, spec.sans, authority.ca_certificate)
        caller, action = entry.caller, entry.action
        row = {
            "serial": summary.serial,
            "cn": spec.common_name,
            "subject": summary.subject,
            "sans": summary.sans,
            "profile": profile.name,
            "not_before": summary.not_before,
            "not_after": summary.not_after,
            "status": "valid",
            "fingerprint_sha256": summary.fingerprint_sha256,
            "issued_by": caller.label,
            "issued_via": issued_via(caller),
            "created_at": now,
            "der": der,
            "issuer_id": authority.issuer.id,
        }

        def record(transaction: Transaction) -> None:
            authority.tokens.spend(transaction, caller)
            if isinstance(caller, ClientIdentity) and caller.renewal_jti is not None:
                expires_at = (caller.renewal_expires_at or now) + CLOCK_SKEW  # kept while a replay could pass
                spent = renewals.use(transaction, caller.summary.serial, caller.renewal_jti, expires_at, now)
                if not spent:  # the same token on another request, perhaps in another worker, a moment ago
                    raise AuthenticationError(REPLAYED)
            certificate_rows.insert(transaction, row)
            authority.audit.record(transaction, action, caller, serial=summary.serial, detail=f"profile={profile.name}")

        return record, IssuedCertificate(certificate=certificate, summary=summary, profile=profile.name)
