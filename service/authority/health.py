"""Health and readiness: the database answers, the newest CRL is fresh, the key matches the certificate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.db import counters
from service.db import crls as crl_rows
from service.errors import CRLExpiredError, UnavailableError

if TYPE_CHECKING:
    from service.authority.state import AuthorityState


def check_ready(authority: AuthorityState) -> None:
    """Ready: the database answers and the newest CRL has not passed its nextUpdate."""
    try:
        state, _, _ = crl_rows.state(authority.db)
    except Exception as exc:
        raise UnavailableError("the database does not answer") from exc
    if state is None:
        raise UnavailableError("no CRL has been published yet")
    if authority.clock() >= state[2]:
        raise CRLExpiredError(state[2])
    expired, _ = authority.root_crls.problems()
    if expired:
        raise UnavailableError("; ".join(expired))


def check_health(authority: AuthorityState) -> None:
    try:
        counters.get(authority.db, counters.REVOCATIONS)
    except Exception as exc:
        raise UnavailableError("the database is not usable") from exc
    if authority.signer.public_key() != authority.ca_certificate.public_key():
        raise UnavailableError("the CA key does not match the CA certificate")
