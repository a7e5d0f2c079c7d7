"""Certificate profiles: what a leaf is for, how long it may live, and which names and keys it may carry.

Built in: `client`, `server`, `peer`. An operator adds or narrows profiles in a TOML document
(see `parse_profiles`); reading the file is the caller's business, this module only validates the data.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from service.ca.names import is_dns_name
from service.ca.usage import extended_key_usage_problems

DEFAULT_VALIDITY_DAYS: Final = 90
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

EXTENDED_KEY_USAGES: Final[dict[str, ObjectIdentifier]] = {
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timeStamping": ExtendedKeyUsageOID.TIME_STAMPING,
}
SUBJECT_ATTRIBUTE_NAMES: Final[dict[str, ObjectIdentifier]] = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "emailAddress": NameOID.EMAIL_ADDRESS,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "DC": NameOID.DOMAIN_COMPONENT,
    "UID": NameOID.USER_ID,
}
CSR_KEY_TYPES: Final = frozenset({"p256", "p384", "p521", "ed25519", "rsa"})


@dataclass(frozen=True)
class NameRules:
    """Allowed names per SAN type. None: any well-formed name of that type; an empty tuple: none at all.

    DNS patterns: `host.example.com` (exactly), `*.example.com` (one label under it, and that literal
    wildcard), `.example.com` (any depth under it). Emails by domain; URIs by prefix; IPs by network.
    """

    dns: tuple[str, ...] | None = None
    ip: tuple[IPNetwork, ...] | None = None
    email: tuple[str, ...] | None = None
    uri: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    extended_key_usage: tuple[ObjectIdentifier, ...]
    default_validity_days: int = DEFAULT_VALIDITY_DAYS
    max_validity_days: int = 397
    key_types: frozenset[str] = CSR_KEY_TYPES
    min_rsa_bits: int = 2048
    max_sans: int = 100
    names: NameRules = field(default_factory=NameRules)
    subject_attributes: frozenset[ObjectIdentifier] = frozenset(SUBJECT_ATTRIBUTE_NAMES.values())

    def __post_init__(self) -> None:
        if not 1 <= self.default_validity_days <= self.max_validity_days:
            raise ValueError(f"profile {self.name}: default_validity_days must be between 1 and max_validity_days")
        if not self.extended_key_usage:
            raise ValueError(f"profile {self.name}: extended_key_usage may not be empty")
        for problem in extended_key_usage_problems(self.extended_key_usage):
            raise ValueError(f"profile {self.name}: {problem}")
        if unknown := self.key_types - CSR_KEY_TYPES:
            raise ValueError(f"profile {self.name}: unknown key types {sorted(unknown)}")
        if not 1 <= self.max_sans <= 1000:
            raise ValueError(f"profile {self.name}: max_sans must be between 1 and 1000")
        if self.min_rsa_bits < 2048:
            raise ValueError(f"profile {self.name}: min_rsa_bits below 2048 is not allowed")
        if NameOID.COMMON_NAME not in self.subject_attributes:
            raise ValueError(f"profile {self.name}: subject_attributes must keep CN")


BUILTIN_PROFILES: Final[dict[str, Profile]] = {
    "client": Profile("client", (ExtendedKeyUsageOID.CLIENT_AUTH,), max_validity_days=365),
    "server": Profile("server", (ExtendedKeyUsageOID.SERVER_AUTH,)),
    "peer": Profile("peer", (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)),
}
DEFAULT_PROFILE: Final = "client"

_FIELDS: Final = {
    "extended_key_usage",
    "default_validity_days",
    "max_validity_days",
    "key_types",
    "min_rsa_bits",
    "max_sans",
    "allowed_dns",
    "allowed_ips",
    "allowed_emails",
    "allowed_uris",
    "subject_attributes",
}


def parse_profiles(document: Mapping[str, Any]) -> dict[str, Profile]:
    """`{"profiles": {name: {...}}}` (a parsed TOML file) -> the built-ins, overridden or extended.

    A profile named like a built-in starts from it, so an operator can narrow `client` with one line.
    Raises ValueError naming the profile and field for every kind of mistake.
    """
    unknown_top = set(document) - {"profiles"}
    if unknown_top:
        raise ValueError(f"unknown top-level keys {sorted(unknown_top)}; expected [profiles.<name>] tables")
    profiles = dict(BUILTIN_PROFILES)
    tables = document.get("profiles", {})
    if not isinstance(tables, Mapping):
        raise ValueError("`profiles` must be a table of tables")
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            raise ValueError(f"profile {name}: must be a table")
        if not name.replace("-", "").replace("_", "").isalnum() or len(name) > 64:
            raise ValueError(f"profile name {name!r}: use letters, digits, - and _")
        profiles[name] = _parse_profile(name, table, profiles.get(name))
    return profiles


def _parse_profile(name: str, table: Mapping[str, Any], base: Profile | None) -> Profile:
    unknown = set(table) - _FIELDS
    if unknown:
        raise ValueError(f"profile {name}: unknown fields {sorted(unknown)}; known: {sorted(_FIELDS)}")
    if base is None and "extended_key_usage" not in table:
        raise ValueError(f"profile {name}: extended_key_usage is required for a new profile")
    profile = base or Profile(name, (ExtendedKeyUsageOID.CLIENT_AUTH,))
    changes: dict[str, Any] = {}
    try:
        if "extended_key_usage" in table:
            changes["extended_key_usage"] = tuple(EXTENDED_KEY_USAGES[u] for u in _strings(table, "extended_key_usage"))
        for key in ("default_validity_days", "max_validity_days", "min_rsa_bits", "max_sans"):
            if key in table:
                if not isinstance(table[key], int) or isinstance(table[key], bool):
                    raise ValueError(f"{key} must be an integer")
                changes[key] = table[key]
        if "max_validity_days" in changes and "default_validity_days" not in changes:
            # narrowing the maximum below the inherited default narrows the default with it
            changes["default_validity_days"] = min(profile.default_validity_days, changes["max_validity_days"])
        if "key_types" in table:
            changes["key_types"] = frozenset(_strings(table, "key_types"))
        if "subject_attributes" in table:
            changes["subject_attributes"] = frozenset(
                SUBJECT_ATTRIBUTE_NAMES[a] for a in _strings(table, "subject_attributes")
            )
        changes["names"] = _parse_names(table, profile.names)
    except KeyError as exc:
        raise ValueError(f"profile {name}: unknown value {exc.args[0]!r}") from None
    except ValueError as exc:
        raise ValueError(f"profile {name}: {exc}") from None
    return replace(profile, name=name, **changes)


def _parse_names(table: Mapping[str, Any], base: NameRules) -> NameRules:
    rules = base
    if "allowed_dns" in table:
        patterns = tuple(p.lower() for p in _strings(table, "allowed_dns"))
        for pattern in patterns:
            if not is_dns_name(pattern.removeprefix("."), pattern=True):
                raise ValueError(f"allowed_dns: {pattern!r} is not a DNS name or pattern")
        rules = replace(rules, dns=patterns)
    if "allowed_ips" in table:
        rules = replace(rules, ip=tuple(ipaddress.ip_network(n, strict=True) for n in _strings(table, "allowed_ips")))
    if "allowed_emails" in table:
        domains = tuple(d.lower().lstrip("@") for d in _strings(table, "allowed_emails"))
        for domain in domains:
            if not is_dns_name(domain.removeprefix("."), allow_wildcard=False):
                raise ValueError(f"allowed_emails: {domain!r} is not a domain")
        rules = replace(rules, email=domains)
    if "allowed_uris" in table:
        rules = replace(rules, uri=_strings(table, "allowed_uris"))
    return rules


def _strings(table: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = table[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of strings")
    return tuple(value)


def dns_allowed(name: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        if pattern.startswith("."):
            if name.endswith(pattern) and len(name) > len(pattern):
                return True
        elif pattern.startswith("*."):
            if name == pattern:
                return True
            head, _, tail = name.partition(".")
            if tail == pattern[2:] and head and head != "*":
                return True
        elif name == pattern:
            return True
    return False


def email_allowed(address: str, domains: tuple[str, ...]) -> bool:
    domain = address.rpartition("@")[2].lower()
    return any(domain == d or (d.startswith(".") and domain.endswith(d)) for d in domains)
