"""Policy: small validators that each return the rules a request breaks, and the decision that joins them.

Every broken rule is reported, not just the first, so a caller can fix a request in one go. The profile
sets the outer bounds; the caller's context (an enrollment token, a renewing certificate) can only narrow them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from cryptography import x509

from service.ca.csr import CertificateRequest
from service.ca.keys import describe_public_key, key_violations
from service.ca.names import (
    common_name_problem,
    format_general_name,
    parse_general_name,
    subject_size_violations,
    subject_violations,
)
from service.ca.profiles import Profile, dns_allowed, email_allowed
from service.ca.subject import encode_subject
from service.errors import PolicyError


@dataclass(frozen=True)
class LeafSpec:
    """A request that passed policy: exactly what will be certified."""

    subject: x509.Name
    common_name: str
    sans: tuple[x509.GeneralName, ...]
    profile: Profile
    validity_days: int


@dataclass(frozen=True)
class PolicyContext:
    """Who is asking narrows the rules.

    - renewal: `allowed_names` (a subset of the presenting certificate's) and `required_common_name`;
    - enrollment token: `exact_names` (exactly this set) and `required_common_name`.
    """

    allowed_names: frozenset[str] | None = None
    exact_names: frozenset[str] | None = None
    required_common_name: str | None = None


Validator = Callable[[CertificateRequest, list[x509.GeneralName], Profile, PolicyContext], list[str]]


def normalise_sans(request: CertificateRequest) -> tuple[list[x509.GeneralName], list[str]]:
    """Requested SANs, cleaned, plus the CN when it is itself a name; and the problems found."""
    problems: list[str] = []
    names: list[x509.GeneralName] = []
    seen: set[x509.GeneralName] = set()
    for requested in request.sans:
        text = format_general_name(requested)
        if text.startswith("unsupported:"):
            problems.append(f"SAN type {text.removeprefix('unsupported:')} is not allowed")
            continue
        try:
            parsed = parse_general_name(_typed(requested, text))
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if parsed not in seen:
            seen.add(parsed)
            names.append(parsed)
    if request.common_name:
        try:
            cn_name = parse_general_name(request.common_name, allow_prefix=False)
        except ValueError:
            cn_name = None
        if cn_name is not None and cn_name not in names:
            names.append(cn_name)
    return names, problems


def _typed(name: x509.GeneralName, text: str) -> str:
    prefix = {
        x509.DNSName: "DNS",
        x509.IPAddress: "IP",
        x509.RFC822Name: "email",
        x509.UniformResourceIdentifier: "URI",
    }
    return f"{prefix[type(name)]}:{text}"


def check_key(
    request: CertificateRequest, sans: list[x509.GeneralName], profile: Profile, ctx: PolicyContext
) -> list[str]:
    problems = key_violations(request.public_key)
    kind = describe_public_key(request.public_key)
    family = "rsa" if kind.startswith("rsa") else kind
    if not problems and family not in profile.key_types:
        problems.append(
            f"profile {profile.name!r} does not accept {kind} keys (allowed: {', '.join(sorted(profile.key_types))})"
        )
    if family == "rsa" and not problems and int(kind[3:]) < profile.min_rsa_bits:
        problems.append(f"profile {profile.name!r} needs RSA keys of at least {profile.min_rsa_bits} bits")
    return problems


def check_subject(
    request: CertificateRequest, sans: list[x509.GeneralName], profile: Profile, ctx: PolicyContext
) -> list[str]:
    problems = subject_violations(request.subject)
    if request.common_name and (cn_problem := common_name_problem(request.common_name)):
        problems.append(cn_problem)
    if ctx.required_common_name is not None and request.common_name != ctx.required_common_name:
        problems.append(f"the CN must be {ctx.required_common_name!r}")
    return problems


def check_names(
    request: CertificateRequest, sans: list[x509.GeneralName], profile: Profile, ctx: PolicyContext
) -> list[str]:
    problems = []
    if not sans:
        problems.append("the certificate needs a name: a CN that is a DNS name, IP or email, or a SAN")
    if len(sans) > profile.max_sans:
        problems.append(f"profile {profile.name!r} allows at most {profile.max_sans} SANs, not {len(sans)}")
    for name in sans:
        if not _profile_allows(profile, name):
            problems.append(f"profile {profile.name!r} does not allow the name {format_general_name(name)!r}")
    texts = [format_general_name(name) for name in sans]
    if ctx.allowed_names is not None:
        problems.extend(f"name {t!r} is not one the caller may request" for t in texts if t not in ctx.allowed_names)
    if ctx.exact_names is not None and set(texts) != ctx.exact_names:
        problems.append(f"the token allows exactly the names {sorted(ctx.exact_names)}, not {sorted(texts)}")
    return problems


def _profile_allows(profile: Profile, name: x509.GeneralName) -> bool:
    rules = profile.names
    if isinstance(name, x509.DNSName):
        return rules.dns is None or dns_allowed(name.value, rules.dns)
    if isinstance(name, x509.IPAddress):
        return rules.ip is None or any(name.value in network for network in rules.ip)
    if isinstance(name, x509.RFC822Name):
        return rules.email is None or email_allowed(name.value, rules.email)
    if isinstance(name, x509.UniformResourceIdentifier):
        return rules.uri is None or any(name.value.startswith(prefix) for prefix in rules.uri)
    return False


VALIDATORS: Final[tuple[Validator, ...]] = (check_key, check_subject, check_names)


def decide(
    request: CertificateRequest,
    profile: Profile,
    validity_days: int | None,
    ctx: PolicyContext = PolicyContext(),
) -> LeafSpec:
    """Returns what to certify, or raises PolicyError listing every broken rule."""
    if len(request.sans) > profile.max_sans:  # before any per-name work: 10,000 SANs must cost nothing
        raise PolicyError([f"profile {profile.name!r} allows at most {profile.max_sans} SANs, not {len(request.sans)}"])
    if oversized := subject_size_violations(request.subject):  # and 10,000 subject attributes neither
        raise PolicyError(oversized)
    sans, problems = normalise_sans(request)
    for validator in VALIDATORS:
        problems.extend(validator(request, sans, profile, ctx))
    days = profile.default_validity_days if validity_days is None else validity_days
    if days < 1:
        problems.append("validity_days must be at least 1")
    elif days > profile.max_validity_days:
        problems.append(f"profile {profile.name!r} allows at most {profile.max_validity_days} days, not {days}")
    subject, encoding = encode_subject(a for a in request.subject if a.oid in profile.subject_attributes)
    problems.extend(encoding)
    if problems:
        raise PolicyError(problems)
    assert request.common_name is not None  # check_subject guarantees it
    return LeafSpec(subject, request.common_name, tuple(sans), profile, days)
