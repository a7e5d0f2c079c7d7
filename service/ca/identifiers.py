"""What an ACME identifier may name and what the challenge validator may dial: allow and deny lists of CIDRs and
DNS suffixes (`POCKETCA_ACME_ALLOW`, `POCKETCA_ACME_DENY`), and the service's own names, refused always.

An entry is a network (`10.0.0.0/8`, `fd12::/16`, a bare address for one) or a DNS suffix: `.corp.example` (or
`corp.example`) matches corp.example and every name below it, a lone `.` every DNS name. An identifier or an
address is refused when a deny entry matches it, unless an allow entry matches it more specifically (a longer
prefix, more labels); otherwise it must match some allow entry. Addresses match only entries of their family.

The defaults allow the private networks and any DNS name, and deny the IANA special-purpose blocks that are not
private networks (loopback, unspecified, link-local, multicast, broadcast, documentation, benchmarking, reserved;
the IPv4-mapped, -compatible, 6to4, Teredo and NAT64 forms, which embed an IPv4 address) and `localhost`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from service.ca.names import is_dns_name

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_ALLOW: tuple[str, ...] = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", ".")
DEFAULT_DENY: tuple[str, ...] = (
    # IPv4 (RFC 6890 and the IANA IPv4 special-purpose registry), multicast and the reserved class E
    "0.0.0.0/8",  # this network (0.0.0.0: this host)
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local (cloud metadata services live here)
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # documentation (TEST-NET-1)
    "192.31.196.0/24",  # AS112
    "192.52.193.0/24",  # AMT
    "192.88.99.0/24",  # 6to4 relay anycast
    "192.175.48.0/24",  # AS112 direct delegation
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation (TEST-NET-2)
    "203.0.113.0/24",  # documentation (TEST-NET-3)
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and the limited broadcast 255.255.255.255
    # IPv6 (the IANA IPv6 special-purpose registry) and multicast
    "::/96",  # unspecified (::), loopback (::1) and the IPv4-compatible forms
    "::ffff:0:0/96",  # IPv4-mapped
    "64:ff9b::/96",  # NAT64
    "64:ff9b:1::/48",  # local NAT64
    "100::/64",  # discard-only
    "2001::/23",  # IETF protocol assignments: Teredo, benchmarking, ORCHID, ...
    "2001:db8::/32",  # documentation
    "2002::/16",  # 6to4
    "2620:4f:8000::/48",  # AS112 direct delegation
    "3fff::/20",  # documentation
    "5f00::/16",  # SRv6 SIDs
    "fe80::/10",  # link-local
    "fec0::/10",  # site-local (deprecated)
    "ff00::/8",  # multicast
    "localhost",  # and every name below it
)


@dataclass(frozen=True)
class Entry:
    """One allow or deny entry: a network, or a DNS suffix as labels (() for `.`, every name)."""

    text: str
    network: IPNetwork | None = None
    labels: tuple[str, ...] = ()

    @property
    def specificity(self) -> int:
        return self.network.prefixlen if self.network is not None else len(self.labels)

    def matches_address(self, address: IPAddress) -> bool:
        return self.network is not None and address.version == self.network.version and address in self.network

    def matches_name(self, labels: tuple[str, ...]) -> bool:
        """A name (its labels) at or below this suffix; a wildcard `*.b` also when this entry is one label under b
        (the certificate would be good for it)."""
        if self.network is not None:
            return False
        n = len(self.labels)
        if n == 0 or labels[len(labels) - n :] == self.labels:
            return True
        return labels[0] == "*" and n == len(labels) and labels[1:] == self.labels[1:]


def parse_entry(text: str) -> Entry:
    """`10.0.0.0/8`, `fd00::1`, `.corp.example`, `corp.example` or `.`; ValueError naming the entry otherwise."""
    value = text.strip().lower()
    if "%" not in value:
        try:
            return Entry(value, network=ipaddress.ip_network(value, strict=False))
        except ValueError:
            pass
    name = value.strip(".") if value.startswith(".") or value == "." else value
    if name and not is_dns_name(name, allow_wildcard=False):
        raise ValueError(f"{text.strip()!r} is neither a network (10.0.0.0/8) nor a DNS suffix (.corp.example)")
    return Entry(value, labels=tuple(name.split(".")) if name else ())


def parse_entries(values: Iterable[str] | str) -> tuple[Entry, ...]:
    if isinstance(values, str):
        values = values.split(",")
    return tuple(parse_entry(v) for v in values if v.strip())


def _canonical(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address is the IPv4 address it maps (for comparing with the service's own)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class IdentifierPolicy:
    """Who may be named and dialed. `refusal_*` return None, or why not (a sentence naming the value)."""

    allow: tuple[Entry, ...] = field(default_factory=lambda: parse_entries(DEFAULT_ALLOW))
    deny: tuple[Entry, ...] = field(default_factory=lambda: parse_entries(DEFAULT_DENY))
    own_names: frozenset[str] = frozenset()  # lower-case DNS names, no trailing dot
    own_addresses: frozenset[IPAddress] = frozenset()

    @classmethod
    def build(cls, allow: Iterable[str], deny: Iterable[str], own: Iterable[str] = ()) -> IdentifierPolicy:
        """From the settings' entries and the service's own names and addresses (anything else in `own` is
        ignored: a URI or an email address names no host)."""
        names, addresses = set(), set()
        for value in own:
            text = value.strip().lower().rstrip(".").strip("[]")
            try:
                addresses.add(_canonical(ipaddress.ip_address(text)))
            except ValueError:
                if is_dns_name(text, allow_wildcard=False):
                    names.add(text)
        return cls(parse_entries(allow), parse_entries(deny), frozenset(names), frozenset(addresses))

    def refusal_for_name(self, name: str) -> str | None:
        """A DNS identifier (lower case, no trailing dot; `*.` for a wildcard)."""
        labels = tuple(name.split("."))
        base = name.removeprefix("*.")
        for own in self.own_names:
            if own == name:
                return f"{name} is one of this service's own names"
            if labels[0] == "*" and own.partition(".")[2] == base:
                return f"{name} would cover {own}, one of this service's own names"
        denied = [e for e in self.deny if e.matches_name(labels)]
        return self._decide(name, denied, [e for e in self.allow if e.matches_name(labels)])

    def refusal_for_address(self, address: IPAddress) -> str | None:
        """An IP identifier, or an address the validator is about to dial."""
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            return f"{address} carries a zone id: it names an interface of this server, not a host"
        if _canonical(address) in self.own_addresses:
            return f"{address} is one of this service's own addresses"
        denied = [e for e in self.deny if e.matches_address(address)]
        return self._decide(str(address), denied, [e for e in self.allow if e.matches_address(address)])

    def _decide(self, shown: str, denied: list[Entry], allowed: list[Entry]) -> str | None:
        best_allow = max(allowed, key=lambda e: e.specificity, default=None)
        if denied:
            worst = max(denied, key=lambda e: e.specificity)
            if best_allow is None or best_allow.specificity <= worst.specificity:
                return f"{shown} is in {worst.text}, which POCKETCA_ACME_DENY refuses"
        if best_allow is None:
            return f"{shown} matches nothing in POCKETCA_ACME_ALLOW"
        return None
