"""Names in certificates: subjects and subject alternative names.

A SAN travels at the edges as a plain string whose kind is unambiguous: an IP address parses as one,
a URI has ``scheme://``, an email has ``@``, anything else must be a DNS name. The prefixes that
OpenSSL prints (``DNS:``, ``IP:``, ``email:``, ``URI:``) are accepted on input too.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from cryptography import x509
from cryptography.x509.oid import NameOID

MAX_DNS_LENGTH: Final = 253
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_URI = re.compile(r"^[a-z][a-z0-9+.-]*://[^\s\x00-\x1f\x7f]+$", re.IGNORECASE)
_EMAIL = re.compile(r"^[^\s@\x00-\x1f\x7f]{1,64}@[^\s@\x00-\x1f\x7f]{1,253}$")

# Subject attributes a CSR may carry over, with the longest value each may hold (RFC 5280 upper bounds).
SUBJECT_ATTRIBUTES: Final[dict[x509.ObjectIdentifier, int]] = {
    NameOID.COMMON_NAME: 64,
    NameOID.ORGANIZATION_NAME: 64,
    NameOID.ORGANIZATIONAL_UNIT_NAME: 64,
    NameOID.COUNTRY_NAME: 2,
    NameOID.STATE_OR_PROVINCE_NAME: 128,
    NameOID.LOCALITY_NAME: 128,
    NameOID.EMAIL_ADDRESS: 255,
    NameOID.SERIAL_NUMBER: 64,
    NameOID.DOMAIN_COMPONENT: 63,
    NameOID.USER_ID: 256,
}

GeneralName = x509.DNSName | x509.IPAddress | x509.RFC822Name | x509.UniformResourceIdentifier


def is_dns_name(value: str, *, allow_wildcard: bool = True) -> bool:
    """LDH labels (IDNA names as A-labels), at most 253 characters in all, wildcard included; the last label
    not all digits, so a mistyped IPv4 address (`010.0.0.1`, `256.1.1.1`) is not taken for a host name."""
    if not value.isascii() or len(value) > MAX_DNS_LENGTH:
        return False
    name = value.lower()
    if allow_wildcard and name.startswith("*."):
        name = name[2:]
    if not name or name.endswith("."):
        return False
    labels = name.split(".")
    return all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


def parse_general_name(text: str, *, allow_prefix: bool = True) -> GeneralName:
    """User text -> a SAN; raises ValueError with a message fit for the caller. `allow_prefix=False` for a CN,
    whose text is the name itself (a CN `DNS:evil.example` is not the name evil.example)."""
    value = text.strip()
    kind, sep, rest = value.partition(":")
    prefix = kind.lower() if sep and allow_prefix else ""
    if prefix in {"dns", "ip", "email", "uri"} and not (prefix == "uri" and rest.startswith("//")):
        value = rest.strip()
    else:
        prefix = ""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value) or not value:
        raise ValueError(f"name {text!r} is empty or holds control characters")
    if prefix in {"", "ip"} and "%" not in value:  # an IPv6 zone (fe80::1%eth0) cannot live in a certificate
        try:
            return x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            pass
    if prefix == "ip":
        raise ValueError(f"{value!r} is not an IP address (without a zone)")
    if prefix in {"", "uri"} and _URI.match(value):
        return x509.UniformResourceIdentifier(value)
    if prefix in {"", "email"} and _EMAIL.match(value):
        local, _, domain = value.rpartition("@")
        if is_dns_name(domain, allow_wildcard=False):
            return x509.RFC822Name(f"{local}@{domain.lower()}")
    if prefix in {"", "dns"} and value.isascii() and is_dns_name(value):
        return x509.DNSName(value.lower())
    raise ValueError(f"{text!r} is not a valid DNS name, IP address, email address or URI")


def format_general_name(name: x509.GeneralName) -> str:
    if isinstance(name, x509.IPAddress):
        return str(name.value)
    if isinstance(name, (x509.DNSName, x509.RFC822Name, x509.UniformResourceIdentifier)):
        return name.value
    return f"unsupported:{type(name).__name__}"


def get_common_name(subject: x509.Name) -> str | None:
    values = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def subject_violations(subject: x509.Name) -> list[str]:
    """Everything wrong with a requested subject: unknown attributes, bad lengths, control characters."""
    problems = []
    cns = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1:
        problems.append("the subject must hold exactly one common name (CN)")
    for attribute in subject:
        oid = attribute.oid
        limit = SUBJECT_ATTRIBUTES.get(oid)
        label = oid._name if hasattr(oid, "_name") else oid.dotted_string
        if limit is None:
            problems.append(f"subject attribute {label} ({oid.dotted_string}) is not allowed")
            continue
        value = attribute.value
        if not isinstance(value, str):
            problems.append(f"subject attribute {label} must be a string")
            continue
        if not value.strip():
            problems.append(f"subject attribute {label} is empty")
        elif len(value) > limit:
            problems.append(f"subject attribute {label} is longer than {limit} characters")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            problems.append(f"subject attribute {label} holds control characters")
    return problems


def build_subject(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
