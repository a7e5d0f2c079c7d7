"""The application layer: who may issue, renew, read and revoke, and the transaction around each change.

Knows the database and the key store; knows nothing of HTTP. Each public method is one unit of work:
the certificate, the token use it spent and its audit row commit together, before the method returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from service import metrics
from service.authority.audit import Auditor
from service.authority.callers import (
    AcmeCaller,
    Caller,
    ClientIdentity,
    LocalCaller,
    TokenCaller,
    issued_via,
    require_scope,
)
from service.authority.crls import DEFAULT_CRL_LIFETIME, CRLPublisher
from service.authority.ocsp import OCSPResponder
from service.authority.paging import check_limit, decode_cursor, encode_cursor
from service.authority.renewal import CLOCK_SKEW, verify_renewal_token
from service.authority.rootcrls import RootCRLs
from service.authority.sessions import ConsoleSessions
from service.authority.throttle import FailureThrottle
from service.authority.tokens import TokenManager
from service.authority.values import (
    AuditEntry,
    CertificateListing,
    CRLDocument,
    IssuedCertificate,
    Issuer,
    NewToken,
    Page,
    PKCS12Bundle,
    StoredCertificate,
    TokenInfo,
)
from service.ca.constraints import constraint_violations, name_constraints_of
from service.ca.crl import encode_revoked_entry, parse_reason
from service.ca.csr import CertificateRequest, load_csr, read_request
from service.ca.inspect import (
    CertificateSummary,
    format_serial,
    has_extended_key_usage,
    parse_serial,
    summarize,
    summarize_issued,
)
from service.ca.issue import Signer, issuer_id, random_serial_number
from service.ca.leaf import sign_leaf
from service.ca.names import build_subject, forbidden_characters, format_general_name, parse_general_name
from service.ca.ocsp import MalformedOCSPRequestError, build_unsuccessful, load_ocsp_request
from service.ca.pkcs12 import MIN_PASSWORD_LENGTH, build_pkcs12
from service.ca.policy import PolicyContext, decide
from service.ca.profiles import BUILTIN_PROFILES, DEFAULT_PROFILE, Profile
from service.db import certificates as certificate_rows
from service.db import crls as crl_rows
from service.db import renewals
from service.db.groupcommit import GroupCommitter, Transaction
from service.db.models import CertificateRecord
from service.db.repositories import REVOCATIONS, CertificateRepository, CounterRepository
from service.db.session import Database
from service.errors import (
    AlreadyRevokedError,
    AuthenticationError,
    CertificateNotFoundError,
    CRLExpiredError,
    CRLNotPublishedError,
    InvalidRequestError,
    IssuanceRateLimitedError,
    IssuerNotFoundError,
    PasswordTooShortError,
    PermissionDeniedError,
    PolicyError,
    RevokedCertificateError,
    ServiceError,
    UnavailableError,
    UnknownStatusError,
)
from service.inputs import as_utc

Clock = Callable[[], dt.datetime]
STATUSES = ("valid", "revoked", "expired")
CLI = LocalCaller("cli")
REPLAYED = "the renewal token was used already (each jti is good once)"
log = logging.getLogger("pocketca.auth")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Authority:
    def __init__(
        self,
        db: Database,
        signer: Signer,
        ca_certificate: x509.Certificate,
        *,
        public_url: str,
        publication_url: str | None = None,
        profiles: Mapping[str, Profile] = BUILTIN_PROFILES,
        crl_lifetime: dt.timedelta = DEFAULT_CRL_LIFETIME,
        issue_rate_per_minute: int = 0,
        auth_failures_per_minute: int = 0,
        clock: Clock = utcnow,
        parents: Sequence[x509.Certificate] = (),
        retired: Sequence[Issuer] = (),
        root_crls: RootCRLs | None = None,
    ) -> None:
        """`signer` and `ca_certificate` are the issuing CA; `parents` its chain up to the root (none for a
        self-signed CA); `retired` the CAs that issued before a rotation and still answer for their certificates;
        `root_crls` the offline roots' CRLs, published in the data dir."""
        self.db = db
        self.signer = signer
        self.ca_certificate = ca_certificate
        self.issuer = Issuer(issuer_id(ca_certificate), ca_certificate, signer, tuple(parents))
        self.issuers = {self.issuer.id: self.issuer, **{i.id: i for i in retired if i.id != self.issuer.id}}
        self._constrained = [c for c in self.issuer.chain if name_constraints_of(c) is not None]  # found once
        self.public_url = public_url.rstrip("/")  # where clients reach the API (renewal tokens name it)
        # the base new certificates carry in their CRL distribution point and AIA (plain HTTP by default)
        self.publication_url = (publication_url or public_url).rstrip("/")
        self.profiles = dict(profiles)
        self.clock = clock
        self.issue_rate_per_minute = issue_rate_per_minute  # per token; 0: no limit
        self.audit = Auditor(db, clock)
        self.tokens = TokenManager(db, self.audit, self.profiles, clock)
        self.crl_publishers = {
            i.id: CRLPublisher(db, i.signer, i.certificate, lifetime=crl_lifetime, clock=clock, issuer_id=i.id)
            for i in self.issuers.values()
        }
        self.crls = self.crl_publishers[self.issuer.id]  # the current issuer's, at /crl
        self.root_crls = root_crls or RootCRLs({}, clock)
        self.ocsp_responders = [
            OCSPResponder(db, i.signer, i.certificate, clock=clock, issuer_id=i.id) for i in self.issuers.values()
        ]
        self.ocsp = self.ocsp_responders[0]
        self.writes = GroupCommitter(db)
        self.console_sessions = ConsoleSessions(db, self.tokens, self.audit, clock)
        # failed logins and bearer tokens, per address: counted and audited always, throttled past the limit (0: never)
        self.failures = FailureThrottle(self.audit, clock, limit=auth_failures_per_minute)
        self._crl_entries: tuple[int, int] | None = None

    def reload_profiles(self, profiles: Mapping[str, Profile]) -> None:
        """New profiles for what comes next (SIGHUP); the token manager shares this mapping."""
        self.profiles.clear()
        self.profiles.update(profiles)

    def close(self) -> None:
        self.failures.stop()  # the last windows of failed authentication are written
        self.writes.close()
        self.db.dispose()
        for issuer in self.issuers.values():
            close = getattr(issuer.signer, "close", None)  # a PKCS#11 session logs out
            if close is not None:
                close()

    @property
    def chain(self) -> list[x509.Certificate]:
        """The issuing chain, issuer first, up to the root."""
        return self.issuer.chain

    @contextlib.contextmanager
    def _refusals(
        self, action: str, caller: Caller, serial: str | None = None, *, profile: str | None = None
    ) -> Iterator[None]:
        try:
            yield
        except ServiceError as exc:
            if action in _ISSUE_ACTIONS:
                metrics.certificate("refused", self._known(profile), caller)
            self.audit.refused(action, caller, exc.detail, serial=serial)
            raise

    # --- who is calling ----------------------------------------------------------------------

    def authenticate_token(self, token: str, *, address: str | None = None) -> TokenCaller:
        return self.tokens.authenticate(token, address=address)

    def identify_client(self, der: bytes, *, address: str | None = None) -> ClientIdentity:
        """A certificate the TLS layer verified; refused here if revoked or not issued by us."""
        certificate, summary, client_auth = _parse_client_certificate(der)
        # every request: a revocation is refused at once, in every worker (the hot path's DB-API read)
        state = certificate_rows.identity_state(self.db, summary.serial)
        if state is None or state[2] != summary.fingerprint_sha256:  # the exact certificate we issued
            raise PermissionDeniedError("the client certificate was not issued by this pocketca")
        status, profile, _ = state
        if status == "revoked":
            raise RevokedCertificateError(summary.serial)
        if not summary.not_before <= self.clock() <= summary.not_after:
            raise PermissionDeniedError("the client certificate is expired or not yet valid")
        if not client_auth:
            raise PermissionDeniedError("the client certificate is not for client authentication")
        return ClientIdentity(certificate, summary, profile, address)

    def authenticate_renewal_token(self, token: str, *, address: str | None = None) -> ClientIdentity:
        """A renewal token (authority.renewal) for POST /csr: the checks of a client certificate (issued by us, the
        exact certificate, not revoked, within its validity) except clientAuth, and a jti not yet spent (it is
        spent with the certificate it pays for).

        Until the signature verifies with the key of a certificate we issued, nobody is authenticated: anyone can
        put any public certificate in x5c. Those refusals are logged and counted, never audited under the
        certificate the token names (nor written at all: a flood of them must not become a flood of rows). The
        later ones (revoked, expired, replayed) come from the certificate's holder, and are audited as such."""
        now = self.clock()
        try:
            claims = verify_renewal_token(token, audience=f"{self.public_url}/csr", now=now)
            certificate, summary, _ = _parse_client_certificate(claims.certificate_der)
            state = certificate_rows.identity_state(self.db, summary.serial)
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
            if renewals.is_used(self.db, summary.serial, claims.jti):
                metrics.renewal_token_refused("replayed")
                raise AuthenticationError(REPLAYED)
        except ServiceError as exc:
            self.audit.refused("certificate.renew", holder, exc.detail, serial=summary.serial)
            raise
        return dataclasses.replace(holder, renewal_jti=claims.jti, renewal_expires_at=claims.expires_at)

    # --- issuance ----------------------------------------------------------------------------

    def sign_csr(
        self, csr_data: bytes, *, caller: Caller, profile: str | None = None, validity_days: int | None = None
    ) -> IssuedCertificate:
        """Admin/issue tokens ask within the profile; enrollment tokens for exactly their names; a certificate
        holder renews its own names."""
        action = _issue_action(caller)
        with self._refusals(action, caller, profile=profile):
            unit, issued = self._prepare_csr(csr_data, caller, profile, validity_days, action)
            self.writes.run(unit)  # committed (with others, one fsync) before we return
        metrics.certificate(_outcome(caller), issued.profile, caller)
        return issued

    async def sign_csr_async(
        self, csr_data: bytes, *, caller: Caller, profile: str | None = None, validity_days: int | None = None
    ) -> IssuedCertificate:
        """`sign_csr` for the event loop: parsing and signing run here (they hold the GIL either way, and a hop
        to a thread costs more than they do); the loop serves others while the batch commits."""
        action = _issue_action(caller)
        try:
            with self.writes.expect():
                unit, issued = self._prepare_csr(csr_data, caller, profile, validity_days, action)
            await self.writes.submit(unit)
        except ServiceError as exc:
            metrics.certificate("refused", self._known(profile), caller)
            await self.writes.submit(self.audit.refusal(action, caller, exc.detail))
            raise
        metrics.certificate(_outcome(caller), issued.profile, caller)
        return issued

    def _prepare_csr(
        self, csr_data: bytes, caller: Caller, profile: str | None, validity_days: int | None, action: str
    ) -> tuple[Callable[[Transaction], None], IssuedCertificate]:
        request = read_request(load_csr(csr_data))
        ctx, chosen = self._context(caller, profile)
        return self._prepare(request, chosen, validity_days, ctx, caller, action)

    def sign_acme_csr(self, csr_data: bytes, *, caller: AcmeCaller, profile: str) -> IssuedCertificate:
        """An ACME finalize: the CSR must name exactly the identifiers the account proved (`caller.names`);
        without a CN (certbot sends none) the first SAN becomes it. Same policy, records and audit as POST /csr."""
        with self._refusals("certificate.issue", caller, profile=profile):
            request = read_request(load_csr(csr_data))
            if request.common_name is None and request.sans:
                first = format_general_name(request.sans[0])
                if len(first.encode()) <= 64:
                    request = dataclasses.replace(request, subject=build_subject(first), common_name=first)
            self._check_rate(caller)
            ctx = PolicyContext(exact_names=caller.names)
            unit, issued = self._prepare(request, self._profile(profile), None, ctx, caller, "certificate.issue")
            self.writes.run(unit)
        metrics.certificate("issued", issued.profile, caller)
        return issued

    def issue_for_key(
        self,
        public_key: CertificatePublicKeyTypes,
        *,
        cn: str,
        sans: list[str],
        profile: str = DEFAULT_PROFILE,
        validity_days: int | None = None,
        caller: Caller = CLI,
    ) -> IssuedCertificate:
        """Issuance without a CSR, for keys made by this service (its own TLS key, `pocketca issue`, PKCS#12)."""
        with self._refusals("certificate.issue", caller, profile=profile):
            request = self._request_for(public_key, cn, sans)
            ctx, chosen = self._context(caller, profile)
            unit, issued = self._prepare(request, chosen, validity_days, ctx, caller, "certificate.issue")
            self.writes.run(unit)
        metrics.certificate("issued", issued.profile, caller)
        return issued

    def issue_pkcs12(
        self,
        *,
        caller: Caller,
        cn: str,
        sans: list[str],
        password: bytes,
        profile: str | None = None,
        validity_days: int | None = None,
        legacy: bool = False,
    ) -> PKCS12Bundle:
        """The key is made here, lives only in this call and the encrypted bundle, and is never stored."""
        with self._refusals("pkcs12.issue", caller, profile=profile):
            if isinstance(caller, ClientIdentity):  # renewal is for CSRs; a server-made key needs a token
                raise PermissionDeniedError("PKCS#12 bundles need an admin, issue or enrollment token")
            if len(password) < MIN_PASSWORD_LENGTH:  # checked before any key is made
                raise PasswordTooShortError(MIN_PASSWORD_LENGTH)
            key = ec.generate_private_key(ec.SECP256R1())
            request = self._request_for(key.public_key(), cn, sans)
            ctx, chosen = self._context(caller, profile)
            unit, issued = self._prepare(request, chosen, validity_days, ctx, caller, "pkcs12.issue")
            self.writes.run(unit)
        metrics.certificate("issued", issued.profile, caller)
        data = build_pkcs12(key, issued.certificate, self.chain, password, friendly_name=cn, legacy=legacy)
        return PKCS12Bundle(issued=issued, data=data)

    def _request_for(self, public_key: CertificatePublicKeyTypes, cn: str, sans: list[str]) -> CertificateRequest:
        if forbidden := forbidden_characters(cn):
            raise PolicyError([f"the CN holds control or format characters ({', '.join(forbidden)})"])
        if not 1 <= len(cn.encode()) <= 64:
            raise PolicyError(["the CN must be 1 to 64 bytes of UTF-8"])
        problems, names = [], []
        for san in sans:
            try:
                names.append(parse_general_name(san))
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise PolicyError(problems)
        return CertificateRequest(subject=build_subject(cn), common_name=cn, sans=tuple(names), public_key=public_key)

    def _context(self, caller: Caller, requested: str | None) -> tuple[PolicyContext, Profile]:
        """The caller narrows the profile's rules; it can never widen them."""
        if isinstance(caller, ClientIdentity):
            if requested not in (None, caller.profile):
                raise PolicyError([f"a renewal keeps the profile {caller.profile!r}"])
            ctx = PolicyContext(allowed_names=frozenset(caller.summary.sans), required_common_name=caller.summary.cn)
            return ctx, self._profile(caller.profile)
        require_scope(caller, "admin", "issue")
        if isinstance(caller, TokenCaller):
            self._check_rate(caller)
        if isinstance(caller, TokenCaller) and caller.profile is not None:
            if requested not in (None, caller.profile):
                raise PolicyError([f"this token may only issue with the profile {caller.profile!r}"])
            requested = caller.profile
        profile = self._profile(requested or DEFAULT_PROFILE)
        if isinstance(caller, TokenCaller) and caller.is_enrollment:
            return PolicyContext(exact_names=caller.names, required_common_name=caller.cn), profile
        return PolicyContext(), profile

    def _check_rate(self, caller: TokenCaller | AcmeCaller) -> None:
        """At most `issue_rate_per_minute` certificates per token in any minute, counted in the database so
        every worker and replica sees the same count (concurrent requests may overshoot by a few)."""
        if not self.issue_rate_per_minute:
            return
        now = self.clock()
        window = dt.timedelta(minutes=1)
        count, first = certificate_rows.issued_since(self.db, caller.label, now - window)
        if count >= self.issue_rate_per_minute:
            retry_after = max(1, math.ceil(((first or now) + window - now).total_seconds()))
            who = "account" if isinstance(caller, AcmeCaller) else "token"
            raise IssuanceRateLimitedError(who, self.issue_rate_per_minute, retry_after)

    def _prepare(
        self,
        request: CertificateRequest,
        profile: Profile,
        validity_days: int | None,
        ctx: PolicyContext,
        caller: Caller,
        action: str,
    ) -> tuple[Callable[[Transaction], None], IssuedCertificate]:
        """Decides and signs; the unit records it. Nothing is returned to the client before the unit commits."""
        spec = decide(request, profile, validity_days, ctx)
        if self._constrained:  # before signing: no CA here signs past its name constraints
            refused = constraint_violations(spec.sans, self._constrained)
            if refused:
                raise PolicyError(refused)
        now = self.clock()
        # DER from the CA's template, the TBS signed once (ca.leaf; the same bytes build_leaf_builder describes)
        certificate, der = sign_leaf(
            self.signer,
            spec,
            request.public_key,
            self.ca_certificate,
            self.signer.public_key(),
            serial_number=random_serial_number(),
            now=now,
            public_url=self.publication_url,
            issuer_id=self.issuer.id,
        )
        summary = summarize_issued(certificate, der, spec.subject, spec.sans, self.ca_certificate)
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
            "issuer_id": self.issuer.id,
        }

        def unit(transaction: Transaction) -> None:
            self.tokens.spend(transaction, caller)
            if isinstance(caller, ClientIdentity) and caller.renewal_jti is not None:
                expires_at = (caller.renewal_expires_at or now) + CLOCK_SKEW  # kept while a replay could pass
                spent = renewals.use(transaction, caller.summary.serial, caller.renewal_jti, expires_at, now)
                if not spent:  # the same token on another request, perhaps in another worker, a moment ago
                    raise AuthenticationError(REPLAYED)
            certificate_rows.insert(transaction, row)
            self.audit.record(transaction, action, caller, serial=summary.serial, detail=f"profile={profile.name}")

        return unit, IssuedCertificate(certificate=certificate, summary=summary, profile=profile.name)

    def _known(self, profile: str | None) -> str:
        """A metrics label: the requested profile if it exists (a caller must not make up label values)."""
        if profile is None:
            return "-"
        return profile if profile in self.profiles else "unknown"

    def _profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise PolicyError([f"unknown profile {name!r}; known: {', '.join(sorted(self.profiles))}"]) from None

    # --- reading and revoking ----------------------------------------------------------------

    def get_certificate(self, serial_text: str, *, caller: Caller) -> StoredCertificate:
        serial = _parse_serial(serial_text)
        if isinstance(caller, ClientIdentity):
            if caller.summary.serial != serial:
                raise PermissionDeniedError("a certificate holder may read only its own certificate")
        else:
            require_scope(caller, "admin", "read")
        with self.db.reader() as session:
            record = CertificateRepository(session).get(serial)
        if record is None:
            raise CertificateNotFoundError(serial)
        return self._stored(record)

    def list_certificates(
        self,
        *,
        caller: Caller,
        cn: str | None = None,
        status: str | None = None,
        expires_before: dt.datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[CertificateListing]:
        require_scope(caller, "admin", "read")
        if status is not None and status not in STATUSES:
            raise UnknownStatusError(status, STATUSES)
        if expires_before is not None:
            try:
                expires_before = as_utc(expires_before)
            except ValueError as exc:
                raise InvalidRequestError(f"expires_before {exc}") from None
        wanted = check_limit(limit)
        now = self.clock()
        with self.db.reader() as session:
            rows = CertificateRepository(session).page(
                now=now,
                cn=cn,
                status=status,
                expires_before=expires_before,
                before_id=decode_cursor(cursor),
                limit=wanted + 1,
            )
        items = [self._listing(r, now) for r in rows[:wanted]]
        next_cursor = encode_cursor(rows[wanted - 1].id) if len(rows) > wanted else None
        return Page(items=items, next_cursor=next_cursor)

    def revoke(self, serial_text: str, *, reason: str | None, caller: Caller) -> StoredCertificate:
        serial = _parse_serial(serial_text)
        with self._refusals("certificate.revoke", caller, serial):
            try:
                reason_name = parse_reason(reason)
            except ValueError as exc:
                raise InvalidRequestError(str(exc)) from None
            if isinstance(caller, ClientIdentity):
                if caller.summary.serial != serial:
                    raise PermissionDeniedError("a certificate holder may revoke only its own certificate")
            else:
                require_scope(caller, "admin", "revoke")

            with self.db.transaction() as transaction:
                session = transaction.session
                self.tokens.spend(transaction, caller)
                record = CertificateRepository(session).get(serial, for_update=True)
                if record is None:
                    raise CertificateNotFoundError(serial)
                if record.status == "revoked":
                    raise AlreadyRevokedError(serial)
                record.status = "revoked"
                record.revoked_at = self.clock()
                record.revocation_reason = reason_name
                record.crl_entry = encode_revoked_entry(serial, record.revoked_at.isoformat(" "), reason_name)
                CounterRepository(session).increment(REVOCATIONS)
                self.audit.record(
                    transaction, "certificate.revoke", caller, serial=serial, detail=f"reason={reason_name}"
                )
        metrics.revocation(reason_name)
        return self._stored(record)

    def _status(self, record: CertificateRecord, now: dt.datetime) -> str:
        return "expired" if record.status == "valid" and record.not_after <= now else record.status

    def _stored(self, record: CertificateRecord) -> StoredCertificate:
        certificate = x509.load_der_x509_certificate(record.der)
        return StoredCertificate(
            certificate=certificate,
            summary=summarize(certificate),
            profile=record.profile,
            status=self._status(record, self.clock()),
            revoked_at=record.revoked_at,
            revocation_reason=record.revocation_reason,
            issued_by=record.issued_by,
            issued_via=record.issued_via,
        )

    def _listing(self, record: CertificateRecord, now: dt.datetime) -> CertificateListing:
        return CertificateListing(
            serial=record.serial,
            cn=record.cn,
            subject=record.subject,
            sans=tuple(record.sans),
            profile=record.profile,
            status=self._status(record, now),
            not_before=record.not_before,
            not_after=record.not_after,
            revoked_at=record.revoked_at,
            revocation_reason=record.revocation_reason,
            fingerprint_sha256=record.fingerprint_sha256,
            issued_by=record.issued_by,
            issued_via=record.issued_via,
        )

    # --- the CRL, tokens, audit, health ------------------------------------------------------

    @property
    def crl_lifetime(self) -> dt.timedelta:
        return self.crls.lifetime

    def current_crl(self) -> CRLDocument:
        return self.crls.current()

    def issuer_crl(self, issuer: str) -> CRLDocument:
        """The CRL of one issuer, current or retired (GET /crl/{issuer id})."""
        publisher = self.crl_publishers.get(issuer)
        if publisher is not None:
            return publisher.current()
        if issuer in self.root_crls.roots or issuer in self.root_crls.aliases:  # an offline root's (`ca crl`)
            published = self.root_crls.current(issuer)
            if published is None:
                raise CRLNotPublishedError(issuer)
            return published.document
        raise IssuerNotFoundError(issuer, [*self.crl_publishers, *self.root_crls.roots])

    def issuer_certificate(self, issuer: str) -> x509.Certificate:
        found = self.issuers.get(issuer)
        if found is not None:
            return found.certificate
        if issuer in self.root_crls.roots:
            return self.root_crls.roots[issuer][0]
        raise IssuerNotFoundError(issuer, [*self.issuers, *self.root_crls.roots])

    def answer_ocsp(self, request: bytes) -> tuple[bytes, dt.datetime | None]:
        """Each issuer answers for its own certificates; a question naming no issuer of ours is `unauthorized`."""
        if len(self.ocsp_responders) == 1:
            return self.ocsp.respond(request)
        try:
            question = load_ocsp_request(request)
        except MalformedOCSPRequestError:
            return build_unsuccessful("malformedRequest"), None
        if question.serial_number < 0:
            return build_unsuccessful("malformedRequest"), None
        for responder in self.ocsp_responders:
            if responder.answers(question):
                return responder.respond_to(question)
        return build_unsuccessful("unauthorized"), None

    def create_token(self, *, caller: Caller = CLI, **options: object) -> NewToken:
        return self.tokens.create(caller=caller, **options)  # type: ignore[arg-type]

    def list_tokens(self, *, caller: Caller) -> list[TokenInfo]:
        return self.tokens.list(caller=caller)

    def delete_token(self, token_id: str, *, caller: Caller) -> None:
        self.tokens.delete(token_id, caller=caller)

    def has_admin_token(self) -> bool:
        return self.tokens.any_admin()

    def audit_page(self, *, caller: Caller, limit: int = 100, cursor: str | None = None) -> Page[AuditEntry]:
        require_scope(caller, "admin")
        return self.audit.page(limit=limit, cursor=cursor)

    def check_ready(self) -> None:
        """Ready: the database answers and the newest CRL has not passed its nextUpdate."""
        try:
            state, _, _ = crl_rows.state(self.db)
        except Exception as exc:
            raise UnavailableError("the database does not answer") from exc
        if state is None:
            raise UnavailableError("no CRL has been published yet")
        if self.clock() >= state[2]:
            raise CRLExpiredError(state[2])
        expired, _ = self.root_crls.problems()
        if expired:
            raise UnavailableError("; ".join(expired))

    def readiness_warnings(self) -> list[str]:
        """What will stop readiness soon without an operator: a root CRL close to its nextUpdate."""
        return self.root_crls.problems()[1]

    def crl_entries(self, document: CRLDocument) -> int:
        """How many certificates the CRL lists (counted once per CRL number)."""
        cached = self._crl_entries
        if cached is None or cached[0] != document.number:
            cached = self._crl_entries = (document.number, len(x509.load_der_x509_crl(document.der)))
        return cached[1]

    def check_health(self) -> None:
        try:
            with self.db.reader() as session:
                CounterRepository(session).get(REVOCATIONS)
        except Exception as exc:
            raise UnavailableError("the database is not usable") from exc
        if self.signer.public_key() != self.ca_certificate.public_key():
            raise UnavailableError("the CA key does not match the CA certificate")


_ISSUE_ACTIONS = frozenset({"certificate.issue", "certificate.renew", "pkcs12.issue"})


def _outcome(caller: Caller) -> str:
    return "renewed" if isinstance(caller, ClientIdentity) else "issued"


def _issue_action(caller: Caller) -> str:
    return "certificate.renew" if isinstance(caller, ClientIdentity) else "certificate.issue"


def _parse_serial(text: str) -> str:
    try:
        return format_serial(parse_serial(text))
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None


@functools.lru_cache(maxsize=4096)
def _parse_client_certificate(der: bytes) -> tuple[x509.Certificate, CertificateSummary, bool]:
    """Parsing is the same for every request on a keep-alive connection: done once per certificate."""
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        raise AuthenticationError("the client certificate cannot be read") from None
    client_auth = has_extended_key_usage(certificate, ExtendedKeyUsageOID.CLIENT_AUTH)
    return certificate, summarize(certificate), client_auth
