"""The application layer: who may issue, renew, read and revoke, and the transaction around each change.

Knows the database and the key store; knows nothing of HTTP. Each public method is one unit of work,
and a certificate is committed before any method returns it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy.orm import Session

from service.ca.crl import RevokedEntry, build_crl, parse_reason
from service.ca.csr import CertificateRequest, load_csr, read_request
from service.ca.inspect import (
    CertificateSummary,
    format_serial,
    has_extended_key_usage,
    parse_serial,
    summarize,
)
from service.ca.issue import Signer, build_leaf_builder, random_serial_number
from service.ca.names import build_subject, parse_general_name
from service.ca.policy import PolicyContext, decide
from service.ca.profiles import BUILTIN_PROFILES, DEFAULT_PROFILE, Profile
from service.db.models import CertificateRecord, CRLRecord, TokenRecord
from service.db.repositories import (
    REVOCATIONS,
    CertificateRepository,
    CounterRepository,
    CRLRepository,
    TokenRepository,
)
from service.db.session import Database
from service.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    PolicyError,
    RevokedCertificateError,
    UnavailableError,
)

Clock = Callable[[], dt.datetime]
TOKEN_PREFIX = "pca_"  # noqa: S105 (a marker, not a secret)
SCOPES = ("admin", "issue", "revoke", "read")
DEFAULT_CRL_LIFETIME = dt.timedelta(days=7)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- who is calling -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenCaller:
    token_id: str
    scope: str

    @property
    def label(self) -> str:
        return f"token:{self.token_id}"


@dataclass(frozen=True)
class ClientIdentity:
    """The holder of a client certificate that passed the TLS handshake and our revocation check."""

    certificate: x509.Certificate
    summary: CertificateSummary
    profile: str

    @property
    def label(self) -> str:
        return f"cert:{self.summary.serial}"


Caller = TokenCaller | ClientIdentity


# --- what comes back ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedCertificate:
    certificate: x509.Certificate
    summary: CertificateSummary
    profile: str


@dataclass(frozen=True)
class StoredCertificate:
    certificate: x509.Certificate
    summary: CertificateSummary
    profile: str
    status: str  # valid | revoked | expired
    revoked_at: dt.datetime | None
    revocation_reason: str | None


@dataclass(frozen=True)
class CRLDocument:
    number: int
    this_update: dt.datetime
    next_update: dt.datetime
    der: bytes


@dataclass(frozen=True)
class NewToken:
    token: str  # the secret: shown once, never stored
    id: str
    scope: str
    expires_at: dt.datetime | None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Authority:
    def __init__(
        self,
        db: Database,
        signer: Signer,
        ca_certificate: x509.Certificate,
        *,
        public_url: str,
        profiles: Mapping[str, Profile] = BUILTIN_PROFILES,
        crl_lifetime: dt.timedelta = DEFAULT_CRL_LIFETIME,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.signer = signer
        self.ca_certificate = ca_certificate
        self.public_url = public_url.rstrip("/")
        self.profiles = dict(profiles)
        self.crl_lifetime = crl_lifetime
        self.clock = clock

    @property
    def chain(self) -> list[x509.Certificate]:
        """The issuing chain, issuer first (a single root today)."""
        return [self.ca_certificate]

    # --- authentication ----------------------------------------------------------------------

    def authenticate_token(self, token: str) -> TokenCaller:
        """`pca_<id>_<secret>`: looked up by id, the secret's hash compared in constant time."""
        token_id, secret = _split_token(token)
        with self.db.reader() as session:
            record = session.get(TokenRecord, token_id)
        expected = record.secret_hash if record is not None else hash_secret("")
        matches = hmac.compare_digest(expected, hash_secret(secret))
        if record is None or not matches:
            raise AuthenticationError("the bearer token is not valid")
        if record.expires_at is not None and record.expires_at <= self.clock():
            raise AuthenticationError("the bearer token has expired")
        if record.uses_left is not None and record.uses_left <= 0:
            raise AuthenticationError("the bearer token has been used up")
        return TokenCaller(token_id=record.id, scope=record.scope)

    def identify_client(self, der: bytes) -> ClientIdentity:
        """A certificate the TLS layer verified; refused here if revoked or not issued by us."""
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            raise AuthenticationError("the client certificate cannot be read") from None
        serial = format_serial(certificate.serial_number)
        with self.db.reader() as session:
            record = CertificateRepository(session).get(serial)
        if record is None or record.der != der:
            raise PermissionDeniedError("the client certificate was not issued by this pocketca")
        if record.status == "revoked":
            raise RevokedCertificateError(serial)
        if not has_extended_key_usage(certificate, ExtendedKeyUsageOID.CLIENT_AUTH):
            raise PermissionDeniedError("the client certificate is not for client authentication")
        return ClientIdentity(certificate=certificate, summary=summarize(certificate), profile=record.profile)

    # --- issuance ----------------------------------------------------------------------------

    def sign_csr(
        self,
        csr_data: bytes,
        *,
        caller: Caller,
        profile: str | None = None,
        validity_days: int | None = None,
    ) -> IssuedCertificate:
        """Admin/issue tokens may ask for any well-formed names; a certificate holder renews its own."""
        csr = load_csr(csr_data)
        request = read_request(csr)
        if isinstance(caller, TokenCaller):
            _require_scope(caller, "admin", "issue")
            ctx = PolicyContext()
            profile_name = profile or DEFAULT_PROFILE
        else:
            ctx = PolicyContext(allowed_names=frozenset(caller.summary.sans), required_common_name=caller.summary.cn)
            profile_name = profile or caller.profile
            if profile_name != caller.profile:
                raise PolicyError([f"a renewal keeps the profile {caller.profile!r}"])
        return self._issue(request, self._profile(profile_name), validity_days, ctx, issued_by=caller.label)

    def issue_for_key(
        self,
        public_key: CertificatePublicKeyTypes,
        *,
        cn: str,
        sans: list[str],
        profile: str = DEFAULT_PROFILE,
        validity_days: int | None = None,
        issued_by: str = "local",
    ) -> IssuedCertificate:
        """Issuance without a CSR, for keys made by this service (its own TLS key, `pocketca issue`)."""
        try:
            names = tuple(parse_general_name(san) for san in sans)
        except ValueError as exc:
            raise PolicyError([str(exc)]) from None
        request = CertificateRequest(subject=build_subject(cn), common_name=cn, sans=names, public_key=public_key)
        return self._issue(request, self._profile(profile), validity_days, PolicyContext(), issued_by=issued_by)

    def _issue(
        self,
        request: CertificateRequest,
        profile: Profile,
        validity_days: int | None,
        ctx: PolicyContext,
        *,
        issued_by: str,
    ) -> IssuedCertificate:
        spec = decide(request, profile, validity_days, ctx)
        now = self.clock()
        builder = build_leaf_builder(
            spec,
            request.public_key,
            self.ca_certificate,
            serial_number=random_serial_number(),
            now=now,
            public_url=self.public_url,
        )
        certificate = self.signer.sign_certificate(builder)
        summary = summarize(certificate)
        record = CertificateRecord(
            serial=summary.serial,
            cn=spec.common_name,
            subject=summary.subject,
            sans=list(summary.sans),
            profile=profile.name,
            not_before=summary.not_before,
            not_after=summary.not_after,
            status="valid",
            fingerprint_sha256=summary.fingerprint_sha256,
            issued_by=issued_by,
            created_at=now,
            der=certificate.public_bytes(Encoding.DER),
        )
        with self.db.writer() as session:  # committed before we return: nothing issued goes unrecorded
            self._consume(session, issued_by)
            CertificateRepository(session).add(record)
        return IssuedCertificate(certificate=certificate, summary=summary, profile=profile.name)

    def _consume(self, session: Session, actor: str) -> None:
        """A token's use is taken in the same transaction as the change it pays for, so a crash or a
        refusal after it gives the use back, and concurrent requests cannot both spend the last one."""
        kind, _, token_id = actor.partition(":")
        if kind == "token" and not TokenRepository(session).consume(token_id, self.clock()):
            raise AuthenticationError("the bearer token has expired, been used up or been deleted")

    def _profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise PolicyError([f"unknown profile {name!r}; known: {', '.join(sorted(self.profiles))}"]) from None

    # --- reading and revoking ----------------------------------------------------------------

    def get_certificate(self, serial_text: str, *, caller: Caller) -> StoredCertificate:
        serial = _parse_serial(serial_text)
        if isinstance(caller, TokenCaller):
            _require_scope(caller, "admin", "read")
        elif caller.summary.serial != serial:
            raise PermissionDeniedError("a certificate holder may read only its own certificate")
        with self.db.reader() as session:
            record = CertificateRepository(session).get(serial)
        if record is None:
            raise NotFoundError(f"no certificate with serial {serial}")
        return self._stored(record)

    def revoke(self, serial_text: str, *, reason: str | None, caller: Caller) -> StoredCertificate:
        serial = _parse_serial(serial_text)
        try:
            reason_name = parse_reason(reason)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None
        if isinstance(caller, TokenCaller):
            _require_scope(caller, "admin", "revoke")
        elif caller.summary.serial != serial:
            raise PermissionDeniedError("a certificate holder may revoke only its own certificate")
        with self.db.writer() as session:
            self._consume(session, caller.label)
            record = CertificateRepository(session).get(serial)
            if record is None:
                raise NotFoundError(f"no certificate with serial {serial}")
            if record.status == "revoked":
                raise ConflictError(f"certificate {serial} is already revoked")
            record.status = "revoked"
            record.revoked_at = self.clock()
            record.revocation_reason = reason_name
            CounterRepository(session).increment(REVOCATIONS)
        return self._stored(record)

    def _stored(self, record: CertificateRecord) -> StoredCertificate:
        status = record.status
        if status == "valid" and record.not_after <= self.clock():
            status = "expired"
        certificate = x509.load_der_x509_certificate(record.der)
        return StoredCertificate(
            certificate=certificate,
            summary=summarize(certificate),
            profile=record.profile,
            status=status,
            revoked_at=record.revoked_at,
            revocation_reason=record.revocation_reason,
        )

    # --- the CRL -----------------------------------------------------------------------------

    def current_crl(self) -> CRLDocument:
        """The newest CRL; rebuilt when a revocation happened since, or past half its lifetime."""
        with self.db.reader() as session:
            latest = CRLRepository(session).latest()
            revision = CounterRepository(session).get(REVOCATIONS)
        if latest is not None and self._is_fresh(latest, revision):
            return _crl_document(latest)
        with self.db.writer() as session:  # the write lock makes concurrent rebuilders queue, then reuse
            crls = CRLRepository(session)
            latest = crls.latest()
            revision = CounterRepository(session).get(REVOCATIONS)
            if latest is not None and self._is_fresh(latest, revision):
                return _crl_document(latest)
            now = self.clock()
            entries = [
                RevokedEntry(parse_serial(serial), revoked_at, reason)
                for serial, revoked_at, reason in CertificateRepository(session).iter_revoked_unexpired(now)
            ]
            number = (latest.number + 1) if latest is not None else 1
            next_update = now + self.crl_lifetime
            crl = build_crl(
                self.signer, self.ca_certificate, entries, number=number, this_update=now, next_update=next_update
            )
            record = CRLRecord(
                number=number,
                this_update=now,
                next_update=next_update,
                revision=revision,
                der=crl.public_bytes(Encoding.DER),
            )
            crls.add(record)
        return _crl_document(record)

    def _is_fresh(self, crl: CRLRecord, revision: int) -> bool:
        half_life = (crl.next_update - crl.this_update) / 2
        return crl.revision == revision and self.clock() < crl.this_update + half_life

    # --- tokens ------------------------------------------------------------------------------

    def create_token(self, *, scope: str, ttl: dt.timedelta | None = None, uses: int | None = None) -> NewToken:
        if scope not in SCOPES:
            raise InvalidRequestError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = self.clock()
        expires_at = now + ttl if ttl is not None else None
        record = TokenRecord(
            id=token_id,
            secret_hash=hash_secret(secret),
            scope=scope,
            expires_at=expires_at,
            uses_left=uses,
            created_at=now,
        )
        with self.db.writer() as session:
            TokenRepository(session).add(record)
        return NewToken(token=f"{TOKEN_PREFIX}{token_id}_{secret}", id=token_id, scope=scope, expires_at=expires_at)

    def has_admin_token(self) -> bool:
        with self.db.reader() as session:
            return TokenRepository(session).any_with_scope("admin")

    # --- health ------------------------------------------------------------------------------

    def check_health(self) -> None:
        try:
            with self.db.reader() as session:
                CounterRepository(session).get(REVOCATIONS)
        except Exception as exc:
            raise UnavailableError("the database is not usable") from exc
        if self.signer.public_key() != self.ca_certificate.public_key():
            raise UnavailableError("the CA key does not match the CA certificate")


def _split_token(token: str) -> tuple[str, str]:
    body = token.strip().removeprefix(TOKEN_PREFIX)
    token_id, sep, secret = body.partition("_")
    if not token.startswith(TOKEN_PREFIX) or not sep or len(token_id) != 16 or not secret:
        raise AuthenticationError("the bearer token is not valid")
    return token_id, secret


def _require_scope(caller: TokenCaller, *scopes: str) -> None:
    if caller.scope not in scopes:
        raise PermissionDeniedError(f"a {caller.scope!r} token may not do this")


def _parse_serial(text: str) -> str:
    try:
        return format_serial(parse_serial(text))
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None


def _crl_document(record: CRLRecord) -> CRLDocument:
    return CRLDocument(
        number=record.number, this_update=record.this_update, next_update=record.next_update, der=record.der
    )
