"""What the authority holds: the database, the issuers and their signers, the publishers and responders, the
clock. The modules by vocabulary (identity, issuance, policy, certificates, issuers, health) take this state, not
the facade (authority.core), so none of them imports the facade that calls them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

from cryptography import x509

from service.authority.audit import Auditor
from service.authority.crls import DEFAULT_CRL_LIFETIME, CRLPublisher
from service.authority.ocsp import OCSPResponder
from service.authority.rootcrls import RootCRLs
from service.authority.sessions import ConsoleSessions
from service.authority.throttle import FailureThrottle
from service.authority.tokens import TokenManager
from service.authority.values import Issuer
from service.ca.constraints import name_constraints_of
from service.ca.issue import Signer, issuer_id
from service.ca.profiles import BUILTIN_PROFILES, Profile
from service.db.groupcommit import GroupCommitter
from service.db.session import Database

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AuthorityState:
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
        self.constrained = [c for c in self.issuer.chain if name_constraints_of(c) is not None]  # found once
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
