"""Names in certificates: subjects and subject alternative names.

A SAN travels at the edges as a plain string whose kind is unambiguous: an IP address parses as one,
a URI has ``scheme://``, an email has ``@``, anything else must be a DNS name. The prefixes that
OpenSSL prints (``DNS:``, ``IP:``, ``email:``, ``URI:``) are accepted on input too.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from typing import Final

import idna
from cryptography import x509
from cryptography.x509.oid import NameOID
from publicsuffixlist import PublicSuffixList

MAX_DNS_LENGTH: Final = 253
# Subjects: at most this many attributes, and this many octets of DER (500 OUs made 11.5 KB). A full subject of
# every allowed attribute at its longest in ASCII is about 1.3 KB.
MAX_SUBJECT_ATTRIBUTES: Final = 16
MAX_SUBJECT_DER_BYTES: Final = 2048
# Unicode categories no name may hold: controls (C0, DEL, C1 such as U+0085 and U+009B), format characters (the
# bidirectional overrides such as U+202E, zero-width spaces and joiners, U+FEFF), the line and paragraph
# separators, and surrogates (which no UTF-8 or UTF-16 string can hold alone).
FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
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


def forbidden_characters(value: str) -> list[str]:
    """The characters of `value` no name may hold (FORBIDDEN_CATEGORIES), as `U+202E`, each once, in order."""
    if value.isascii() and value.isprintable():  # the usual case, decided in C
        return []
    found: list[str] = []
    for char in value:
        if unicodedata.category(char) in FORBIDDEN_CATEGORIES:
            code = f"U+{ord(char):04X}"
            if code not in found:
                found.append(code)
    return found


def dns_name_problem(value: str, *, allow_wildcard: bool = True, pattern: bool = False) -> str | None:
    """Why `value` is no DNS name we certify, or None. LDH labels, at most 253 characters in all, wildcard
    included; the last label not all digits (a mistyped IPv4 address, `010.0.0.1`, is not a host name); no empty
    label, so no trailing dot (`www.example.com..` is refused, never shortened). IDNA names as A-labels that
    decode under IDNA 2008 (`xn--zz` does not) and no other label with `--` in its third and fourth places (RFC
    5891's reserved form, as Boulder refuses it). A wildcard only as the whole leftmost label, above a
    registrable domain: `*.example.com`, not `*.com` nor `*.co.uk` (public suffixes, the ICANN section of the
    Public Suffix List, where every unknown top-level name counts as one, so `*.corp` too). `pattern`: a
    profile's allowed_dns pattern, where `*.corp` means one label under corp and the suffix rule does not apply."""
    if not value.isascii():
        return "is not ASCII: write IDNA names as A-labels (xn--...)"
    if len(value) > MAX_DNS_LENGTH:
        return f"is longer than {MAX_DNS_LENGTH} characters"
    name = value.lower()
    wildcard = allow_wildcard and name.startswith("*.")
    if wildcard:
        name = name[2:]
    if not name:
        return "is empty"
    labels = name.split(".")
    if "" in labels:
        return "has an empty label (a leading, trailing or doubled dot)"
    for label in labels:
        if not _LABEL.fullmatch(label):  # fullmatch: `$` alone would let a final newline through
            return f"has a label {label!r} that is not letters, digits and inner hyphens (at most 63)"
        if label[2:4] == "--" and (problem := _a_label_problem(label)):
            return problem
    if labels[-1].isdigit():
        return "ends in a numeric label (an IP address is written without a name's form)"
    if wildcard and not pattern and _public_suffixes().is_public(name):
        return f"is a wildcard over the public suffix {name!r}: a wildcard needs a registrable domain below it"
    return None


def _a_label_problem(label: str) -> str | None:
    if not label.startswith("xn--"):
        return f"has a label {label!r} in the reserved form ??-- that is not an A-label (xn--)"
    try:
        if idna.encode(idna.decode(label)).decode() == label:
            return None
    except (idna.IDNAError, UnicodeError, ValueError):
        pass
    return f"has a label {label!r} that is not a valid IDNA 2008 A-label"


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    """The ICANN section of the Public Suffix List the publicsuffixlist package ships (offline), read once."""
    return PublicSuffixList(only_icann=True)


def is_dns_name(value: str, *, allow_wildcard: bool = True, pattern: bool = False) -> bool:
    return dns_name_problem(value, allow_wildcard=allow_wildcard, pattern=pattern) is None


def common_name_problem(cn: str) -> str | None:
    """Why a CN written as a DNS name (only letters, digits, hyphens, dots and `*`, with a dot or a `*`) is not a
    valid one, or None: `*.com`, `www.example.com..` and `xn--zz.example` are no plain text either. A CN of other
    text (`Alice Smith`, `build_42`) is free text, and so is a version-like `v1.2`."""
    if not _DNS_LIKE.fullmatch(cn) or not ("." in cn or "*" in cn) or _is_ip_text(cn):
        return None
    problem = dns_name_problem(cn)
    if problem is None or problem.startswith("ends in a numeric label"):
        return None
    return f"the CN {cn!r} is written as a DNS name but is not a valid one: it {problem}"


_DNS_LIKE = re.compile(r"[A-Za-z0-9*.-]+")


def _is_ip_text(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


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
    if not value:
        raise ValueError(f"name {text!r} is empty")
    if forbidden := forbidden_characters(value):
        raise ValueError(f"name {text!r} holds control or format characters ({', '.join(forbidden)})")
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
    if prefix in {"", "dns"} and value.isascii():
        problem = dns_name_problem(value)
        if problem is None:
            return x509.DNSName(value.lower())
        meant_as_dns = "@" not in value and "://" not in value and ("." in value or "*" in value)
        if prefix == "dns" or meant_as_dns:  # say what is wrong with it
            raise ValueError(f"{text!r} is not a valid DNS name: it {problem}")
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


def subject_size_violations(subject: x509.Name) -> list[str]:
    """A subject over MAX_SUBJECT_ATTRIBUTES attributes or MAX_SUBJECT_DER_BYTES of DER: checked before any
    per-attribute work, so 10,000 attributes cost nothing more."""
    count = sum(len(rdn) for rdn in subject.rdns)
    if count > MAX_SUBJECT_ATTRIBUTES:
        return [f"the subject has {count} attributes; at most {MAX_SUBJECT_ATTRIBUTES} are allowed"]
    try:
        size = len(subject.public_bytes())
    except ValueError:  # a value no encoding holds (a lone surrogate): the attribute checks name it
        return []
    if size > MAX_SUBJECT_DER_BYTES:
        return [f"the subject is {size} bytes of DER; at most {MAX_SUBJECT_DER_BYTES} are allowed"]
    return []


def subject_violations(subject: x509.Name) -> list[str]:
    """Everything wrong with a requested subject: its size, unknown attributes, bad lengths, characters no name
    may hold (FORBIDDEN_CATEGORIES)."""
    problems = subject_size_violations(subject)
    if problems:
        return problems
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
        if forbidden := forbidden_characters(value):
            problems.append(f"subject attribute {label} holds control or format characters ({', '.join(forbidden)})")
    return problems


def build_subject(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
