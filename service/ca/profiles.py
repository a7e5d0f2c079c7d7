"""Certificate profiles: what a leaf is for and how long it may live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

DEFAULT_VALIDITY_DAYS: Final = 90


@dataclass(frozen=True)
class Profile:
    name: str
    extended_key_usage: tuple[ObjectIdentifier, ...]
    default_validity_days: int = DEFAULT_VALIDITY_DAYS
    max_validity_days: int = 397

    def __post_init__(self) -> None:
        if not 1 <= self.default_validity_days <= self.max_validity_days:
            raise ValueError(f"profile {self.name}: default validity must be between 1 and the maximum")


BUILTIN_PROFILES: Final[dict[str, Profile]] = {
    "client": Profile("client", (ExtendedKeyUsageOID.CLIENT_AUTH,), max_validity_days=365),
    "server": Profile("server", (ExtendedKeyUsageOID.SERVER_AUTH,)),
    "peer": Profile("peer", (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)),
}
DEFAULT_PROFILE: Final = "client"
