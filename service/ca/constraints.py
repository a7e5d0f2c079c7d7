"""Name constraints (RFC 5280 4.2.1.10) on an issuing CA, and the check that a leaf's names obey them.

Verifiers enforce the constraints in the chain anyway; checking them here, before signing, means the CA never
signs a certificate that every client would reject, and the requester hears why in one line per name.
Only the three name types pocketca constrains are understood: DNS names, IP addresses and email addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ConstraintSpec:
    """What the operator asked for: permitted and excluded DNS suffixes, IP ranges (CIDR) and email domains."""

    permitted_dns: tuple[str, ...] = ()
    excluded_dns: tuple[str, ...] = ()
    permitted_ip: tuple[str, ...] = ()
    excluded_ip: tuple[str, ...] = ()
    permitted_email: tuple[str, ...] = ()
    excluded_email: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not any(
            (
                self.permitted_dns,
                self.excluded_dns,
                self.permitted_ip,
                self.excluded_ip,
                self.permitted_email,
                self.excluded_email,
            )
        )


def build_name_constraints(spec: ConstraintSpec) -> x509.NameConstraints | None:
    """The extension for `spec`, or None when it constrains nothing. ValueError names a bad entry."""
    if spec.is_empty():
        return None

    def subtrees(dns: Sequence[str], ips: Sequence[str], emails: Sequence[str]) -> list[x509.GeneralName] | None:
        names: list[x509.GeneralName] = [x509.DNSName(_dns_constraint(d)) for d in dns]
        names += [x509.IPAddress(_network(i)) for i in ips]
        names += [x509.RFC822Name(_email_constraint(e)) for e in emails]
        return names or None

    return x509.NameConstraints(
        permitted_subtrees=subtrees(spec.permitted_dns, spec.permitted_ip, spec.permitted_email),
        excluded_subtrees=subtrees(spec.excluded_dns, spec.excluded_ip, spec.excluded_email),
    )


def name_constraints_of(certificate: x509.Certificate) -> x509.NameConstraints | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None


def constraint_violations(names: Iterable[x509.GeneralName], chain: Iterable[x509.Certificate]) -> list[str]:
    """One line per name that a CA of `chain` (the issuer and its parents) does not allow."""
    problems: list[str] = []
    constraints = [(c.subject.rfc4514_string(), nc) for c in chain if (nc := name_constraints_of(c)) is not None]
    for name in names:
        for ca, nc in constraints:
            reason = _violation(name, nc)
            if reason is not None:
                problems.append(f"{_describe(name)} {reason} of the issuing CA ({ca})")
                break
    return problems


def violations_of(names: Iterable[x509.GeneralName], constraints: x509.NameConstraints, ca: str) -> list[str]:
    """`constraint_violations` for constraints not yet in a certificate (`ca` names whose they are)."""
    return [f"{_describe(n)} {reason} of {ca}" for n in names if (reason := _violation(n, constraints)) is not None]


def _violation(name: x509.GeneralName, nc: x509.NameConstraints) -> str | None:
    excluded = [s for s in nc.excluded_subtrees or () if type(s) is type(name)]
    if any(_matches(name, s) for s in excluded):
        return "is excluded by the name constraints"
    permitted = [s for s in nc.permitted_subtrees or () if type(s) is type(name)]
    # RFC 5280: a name type with no permitted subtree is not limited by the other types' subtrees
    if permitted and not any(_matches(name, s) for s in permitted):
        return "is outside the permitted names"
    return None


def _matches(name: x509.GeneralName, subtree: x509.GeneralName) -> bool:
    if isinstance(name, x509.DNSName) and isinstance(subtree, x509.DNSName):
        return dns_within(name.value, subtree.value)
    if isinstance(name, x509.IPAddress) and isinstance(subtree, x509.IPAddress):
        address, network = name.value, subtree.value
        if not isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network):
            return False
        return isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address) and (
            address.version == network.version and address in network
        )
    if isinstance(name, x509.RFC822Name) and isinstance(subtree, x509.RFC822Name):
        return email_within(name.value, subtree.value)
    return False


def dns_within(name: str, constraint: str) -> bool:
    """RFC 5280: 'example.com' allows example.com and every name under it; '.example.com' only names under it."""
    name, constraint = name.lower().rstrip("."), constraint.lower().rstrip(".")
    if constraint == "":
        return True
    if constraint.startswith("."):
        return name.endswith(constraint)
    return name == constraint or name.endswith("." + constraint)


def email_within(address: str, constraint: str) -> bool:
    """'user@host': that mailbox; 'host': any mailbox at host; '.host': any mailbox under host."""
    address, constraint = address.lower(), constraint.lower()
    if "@" in constraint:
        return address == constraint
    host = address.rpartition("@")[2]
    if constraint.startswith("."):
        return host.endswith(constraint)
    return host == constraint


def _describe(name: x509.GeneralName) -> str:
    kind = {x509.DNSName: "DNS", x509.IPAddress: "IP", x509.RFC822Name: "email"}.get(type(name), "name")
    return f"{kind} {name.value}"


def _dns_constraint(text: str) -> str:
    value = text.strip().lower()
    bare = value.removeprefix(".")
    labels = bare.split(".")
    if not bare or any(
        not label or len(label) > 63 or not all(c.isalnum() or c == "-" for c in label) for label in labels
    ):
        raise ValueError(f"{text!r} is not a DNS suffix like example.com or .example.com")
    return value


def _network(text: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP range like 10.0.0.0/8 or fd00::/8") from None


def _email_constraint(text: str) -> str:
    value = text.strip().lower()
    local, at, host = value.rpartition("@")
    if (at and not local) or not host:
        raise ValueError(f"{text!r} is not an email domain like example.com, .example.com or user@example.com")
    _dns_constraint(host)
    return value
