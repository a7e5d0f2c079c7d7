"""The application layer's one way in: who may issue, renew, read and revoke, and the transaction around each
change. Front doors (REST, ACME, the console, the CLI) call this facade; the work is in the modules by vocabulary:
identity (who is calling), issuance (the one pipeline every entry point configures), policy (what a caller may ask
for), certificates (reading and revoking), tokens, audit, crls, ocsp.

Knows the database and the key store; knows nothing of HTTP. Each public method is one unit of work:
the certificate, the token use it spent and its audit row commit together, before the method returns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from service.authority import certificates, health, identity, issuers
from service.authority.callers import AcmeCaller, Caller, ClientIdentity, LocalCaller, TokenCaller, require_scope
from service.authority.issuance import Issuance, acme_entry, csr_entry, key_entry, pkcs12_entry
from service.authority.state import AuthorityState
from service.authority.values import (
    AuditEntry,
    CertificateListing,
    CRLDocument,
    IssuedCertificate,
    NewToken,
    Page,
    PKCS12Bundle,
    StoredCertificate,
    TokenInfo,
)
from service.ca.pkcs12 import build_pkcs12
from service.ca.profiles import DEFAULT_PROFILE, Profile

CLI = LocalCaller("cli")


class Authority(AuthorityState):
    """The facade: one method per unit of work, each delegating to the module of its vocabulary."""

    @cached_property
    def issuance(self) -> Issuance:
        """The one pipeline, over this authority's state (made on first use)."""
        return Issuance(self)

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

    # --- who is calling ----------------------------------------------------------------------

    def authenticate_token(self, token: str, *, address: str | None = None) -> TokenCaller:
        return self.tokens.authenticate(token, address=address)

    def identify_client(self, der: bytes, *, address: str | None = None) -> ClientIdentity:
        """A certificate the TLS layer verified; refused here if revoked or not issued by us."""
        return identity.identify_client(self, der, address)

    def authenticate_renewal_token(self, token: str, *, address: str | None = None) -> ClientIdentity:
        """A renewal token for POST /csr (see authority.identity)."""
        return identity.authenticate_renewal_token(self, token, address)

    # --- issuance: each entry point configures the one pipeline (authority.issuance) ----------

    def sign_csr(
        self, csr_data: bytes, *, caller: Caller, profile: str | None = None, validity_days: int | None = None
    ) -> IssuedCertificate:
        """Admin/issue tokens ask within the profile; enrollment tokens for exactly their names; a certificate
        holder renews its own names."""
        return self.issuance.issue(csr_entry(self, csr_data, caller, profile, validity_days))

    async def sign_csr_async(
        self, csr_data: bytes, *, caller: Caller, profile: str | None = None, validity_days: int | None = None
    ) -> IssuedCertificate:
        """`sign_csr` for the event loop: the loop serves others while the batch commits."""
        return await self.issuance.issue_async(csr_entry(self, csr_data, caller, profile, validity_days))

    def sign_acme_csr(self, csr_data: bytes, *, caller: AcmeCaller, profile: str) -> IssuedCertificate:
        """An ACME finalize: the CSR must name exactly the identifiers the account proved (`caller.names`);
        without a CN (certbot sends none) the first SAN becomes it. Same policy, records and audit as POST /csr."""
        return self.issuance.issue(acme_entry(self, csr_data, caller, profile))

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
        return self.issuance.issue(key_entry(self, public_key, cn, sans, caller, profile, validity_days))

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
        entry, keys = pkcs12_entry(self, caller, cn, sans, password, profile, validity_days)
        issued = self.issuance.issue(entry)
        data = build_pkcs12(keys[0], issued.certificate, self.chain, password, friendly_name=cn, legacy=legacy)
        return PKCS12Bundle(issued=issued, data=data)

    # --- reading and revoking (authority.certificates) ---------------------------------------

    def get_certificate(self, serial_text: str, *, caller: Caller) -> StoredCertificate:
        return certificates.get_certificate(self, serial_text, caller)

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
        return certificates.list_certificates(
            self, caller=caller, cn=cn, status=status, expires_before=expires_before, limit=limit, cursor=cursor
        )

    def revoke(self, serial_text: str, *, reason: str | None, caller: Caller) -> StoredCertificate:
        return certificates.revoke(self, serial_text, reason, caller)

    # --- the CRL, tokens, audit, health ------------------------------------------------------

    @property
    def crl_lifetime(self) -> dt.timedelta:
        return self.crls.lifetime

    def current_crl(self) -> CRLDocument:
        return self.crls.current()

    def issuer_crl(self, issuer: str) -> CRLDocument:
        """The CRL of one issuer, current or retired (GET /crl/{issuer id})."""
        return issuers.issuer_crl(self, issuer)

    def issuer_certificate(self, issuer: str) -> x509.Certificate:
        return issuers.issuer_certificate(self, issuer)

    def answer_ocsp(self, request: bytes) -> tuple[bytes, dt.datetime | None]:
        """Each issuer answers for its own certificates; a question naming no issuer of ours is `unauthorized`."""
        return issuers.answer_ocsp(self, request)

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
        health.check_ready(self)

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
        health.check_health(self)
