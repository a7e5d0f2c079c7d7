"""What a caller may ask for: the caller narrows the profile's rules (it can never widen them), tokens issue at
most so many certificates a minute; and the certificate requests of the entry points without a CSR."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from service.authority.callers import AcmeCaller, Caller, ClientIdentity, TokenCaller, require_scope
from service.ca.csr import CertificateRequest, load_csr, read_request
from service.ca.names import build_subject, forbidden_characters, format_general_name, parse_general_name
from service.ca.policy import PolicyContext
from service.ca.profiles import DEFAULT_PROFILE, Profile
from service.db import certificates as certificate_rows
from service.errors import IssuanceRateLimitedError, PolicyError

if TYPE_CHECKING:
    from service.authority.state import AuthorityState


def caller_context(authority: AuthorityState, caller: Caller, requested: str | None) -> tuple[PolicyContext, Profile]:
    """The caller narrows the profile's rules; it can never widen them."""
    if isinstance(caller, ClientIdentity):
        if requested not in (None, caller.profile):
            raise PolicyError([f"a renewal keeps the profile {caller.profile!r}"])
        ctx = PolicyContext(allowed_names=frozenset(caller.summary.sans), required_common_name=caller.summary.cn)
        return ctx, profile_named(authority.profiles, caller.profile)
    require_scope(caller, "admin", "issue")
    if isinstance(caller, TokenCaller):
        check_rate(authority, caller)
    if isinstance(caller, TokenCaller) and caller.profile is not None:
        if requested not in (None, caller.profile):
            raise PolicyError([f"this token may only issue with the profile {caller.profile!r}"])
        requested = caller.profile
    profile = profile_named(authority.profiles, requested or DEFAULT_PROFILE)
    if isinstance(caller, TokenCaller) and caller.is_enrollment:
        return PolicyContext(exact_names=caller.names, required_common_name=caller.cn), profile
    return PolicyContext(), profile


def acme_context(authority: AuthorityState, caller: AcmeCaller, profile: str) -> tuple[PolicyContext, Profile]:
    """An ACME account asks for exactly the identifiers it proved."""
    check_rate(authority, caller)
    return PolicyContext(exact_names=caller.names), profile_named(authority.profiles, profile)


def check_rate(authority: AuthorityState, caller: TokenCaller | AcmeCaller) -> None:
    """At most `issue_rate_per_minute` certificates per token in any minute, counted in the database so
    every worker and replica sees the same count (concurrent requests may overshoot by a few)."""
    limit = authority.issue_rate_per_minute
    if not limit:
        return
    now = authority.clock()
    window = dt.timedelta(minutes=1)
    count, first = certificate_rows.issued_since(authority.db, caller.label, now - window)
    if count >= limit:
        retry_after = max(1, math.ceil(((first or now) + window - now).total_seconds()))
        who = "account" if isinstance(caller, AcmeCaller) else "token"
        raise IssuanceRateLimitedError(who, limit, retry_after)


def profile_named(profiles: Mapping[str, Profile], name: str) -> Profile:
    try:
        return profiles[name]
    except KeyError:
        raise PolicyError([f"unknown profile {name!r}; known: {', '.join(sorted(profiles))}"]) from None


def known_label(profiles: Mapping[str, Profile], profile: str | None) -> str:
    """A metrics label: the requested profile if it exists (a caller must not make up label values)."""
    if profile is None:
        return "-"
    return profile if profile in profiles else "unknown"


def request_from_csr(csr_data: bytes) -> CertificateRequest:
    return read_request(load_csr(csr_data))


def acme_request(csr_data: bytes) -> CertificateRequest:
    """An ACME finalize's CSR: without a CN (certbot sends none) the first SAN becomes it."""
    request = read_request(load_csr(csr_data))
    if request.common_name is None and request.sans:
        first = format_general_name(request.sans[0])
        if len(first.encode()) <= 64:
            request = dataclasses.replace(request, subject=build_subject(first), common_name=first)
    return request


def request_for_key(public_key: CertificatePublicKeyTypes, cn: str, sans: list[str]) -> CertificateRequest:
    """A request without a CSR, for keys made by this service."""
    if forbidden := forbidden_characters(cn):
        raise PolicyError([f"the CN holds control or format characters ({', '.join(forbidden)})"])
    if not 1 <= len(cn.encode()) <= 64:
        raise PolicyError(["the CN must be 1 to 64 bytes of UTF-8"])
    problems, names = [], []
    for san in sans:
        try:
            names.append(parse_general_name(san))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise PolicyError(problems)
    return CertificateRequest(subject=build_subject(cn), common_name=cn, sans=tuple(names), public_key=public_key)
