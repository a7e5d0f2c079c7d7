"""The ACME server's parts, put together once per worker: nonces, accounts, orders and the validator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.authority import Authority
from service.authority.acme.accounts import Accounts
from service.authority.acme.authorizations import Authorizations
from service.authority.acme.challenges import ValidationConfig, Validator
from service.authority.acme.limits import RateLimits
from service.authority.acme.nonces import NonceStore, SpendingDatabase
from service.authority.acme.orders import Orders
from service.ca.profiles import Profile


@dataclass(frozen=True)
class AcmeConfig:
    default_profile: str = "server"
    eab_required: bool = False
    validation: ValidationConfig = field(default_factory=ValidationConfig)  # its policy applies to orders too
    limits: RateLimits = field(default_factory=RateLimits)


class AcmeServer:
    def __init__(self, authority: Authority, config: AcmeConfig) -> None:
        self.authority = authority
        self.config = config
        self.nonces = NonceStore(authority.db, authority.clock)
        db = SpendingDatabase(authority.db, self.nonces)  # a request's first write spends its nonce
        self.accounts = Accounts(
            db,
            authority.audit,
            authority.profiles,
            authority.clock,
            eab_required=config.eab_required,
            limits=config.limits,
        )
        self.authorizations = Authorizations(authority, db, Validator(config.validation), authority.clock)
        self.orders = Orders(
            authority,
            db,
            self.authorizations,
            authority.clock,
            default_profile=config.default_profile,
            policy=config.validation.policy,
            limits=config.limits,
        )

    def close(self) -> None:
        self.authorizations.pool.shutdown(wait=False, cancel_futures=True)

    def meta(self) -> dict[str, Any]:
        return {
            "profiles": {name: describe(p) for name, p in sorted(self.authority.profiles.items())},
            "externalAccountRequired": self.config.eab_required,
        }


def describe(profile: Profile) -> str:
    usages = ", ".join(oid._name for oid in profile.extended_key_usage)
    return (
        f"{usages}; {profile.default_validity_days} days (at most {profile.max_validity_days}); "
        f"keys: {', '.join(sorted(profile.key_types))}"
    )
