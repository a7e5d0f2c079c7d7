"""Refusals carry data, and their detail is built from it where it is shown: the same words as before, the same
problem type (a class `shown_as_parent` is no new type for clients), whatever front door renders it."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from service import errors
from service.authority.acme.problems import from_service_error
from service.http.problems import problem, slug_for, status_for
from service.web.forms import FormFieldError, NotAWholeNumberError, UnreadableDateError

WHEN = dt.datetime(2030, 1, 31, 12, 0, tzinfo=dt.UTC)

# (the refusal, the data it carries, its detail as callers have always read it, its problem type, its status)
CASES: list[tuple[errors.ServiceError, dict[str, Any], str, str, int]] = [
    (
        errors.CertificateNotFoundError("0a1b"),
        {"serial": "0a1b"},
        "no certificate with serial 0a1b",
        "not-found",
        404,
    ),
    (errors.TokenNotFoundError("tok1"), {"token_id": "tok1"}, "no token with id tok1", "not-found", 404),
    (
        errors.IssuerNotFoundError("x" * 50, ["ca", "root"]),
        {"issuer": "x" * 50, "known": ("ca", "root")},
        f"no issuer {'x' * 40!r}; known: ca, root",
        "not-found",
        404,
    ),
    (
        errors.CRLNotPublishedError("root"),
        {"issuer": "root"},
        "no CRL of the root root is published yet: `pocketca ca crl` signs one",
        "not-found",
        404,
    ),
    (
        errors.AlreadyRevokedError("0a1b"),
        {"serial": "0a1b"},
        "certificate 0a1b is already revoked",
        "conflict",
        409,
    ),
    (
        errors.CRLExpiredError(WHEN),
        {"expired_at": WHEN},
        "the CRL expired at 2030-01-31T12:00:00+00:00 and no fresh one was built",
        "unavailable",
        503,
    ),
    (
        errors.RevokedCertificateError("0a1b"),
        {"serial": "0a1b"},
        "certificate 0a1b has been revoked",
        "revoked-certificate",
        403,
    ),
    (
        errors.PolicyError(["one", "two"]),
        {"violations": ["one", "two"]},
        "one; two",
        "policy",
        403,
    ),
    (errors.ScopeDeniedError("read"), {"scope": "read"}, "a 'read' token may not do this", "permission-denied", 403),
    (
        errors.IssuanceRateLimitedError("token", 5, 12),
        {"who": "token", "per_minute": 5, "retry_after": 12},
        "this token may issue 5 certificates a minute; retry in 12 s",
        "rate-limited",
        429,
    ),
    (
        errors.TooManyFailuresError(30),
        {"retry_after": 30},
        "too many failed logins and bearer tokens from this address; retry in 30 s",
        "rate-limited",
        429,
    ),
    (
        errors.PayloadTooLargeError(65536),
        {"max_bytes": 65536},
        "the request body is over 65536 bytes",
        "payload-too-large",
        413,
    ),
    (
        errors.HeadersTooLargeError(16384),
        {"max_bytes": 16384},
        "the request head is over 16384 bytes",
        "headers-too-large",
        431,
    ),
    (
        errors.RequestTimeoutError(10.0),
        {"seconds": 10.0},
        "the request body did not arrive within 10 s",
        "request-timeout",
        408,
    ),
    (
        errors.JSONTooDeepError(32),
        {"max_depth": 32},
        "the JSON body nests arrays and objects deeper than 32 levels",
        "invalid-request",
        400,
    ),
    (
        errors.MediaTypeNotAcceptedError(("application/json", "application/pkcs10"), None),
        {"accepted": ("application/json", "application/pkcs10"), "sent": None},
        "send application/json or application/pkcs10, not 'nothing'",
        "unsupported-media-type",
        415,
    ),
    (
        errors.UnknownStatusError("lost", ("valid", "revoked", "expired")),
        {"status": "lost", "known": ("valid", "revoked", "expired")},
        "status must be one of valid, revoked, expired",
        "invalid-request",
        400,
    ),
    (
        errors.LimitOutOfRangeError(0, 1000),
        {"limit": 0, "maximum": 1000},
        "limit must be between 1 and 1000",
        "invalid-request",
        400,
    ),
    (
        errors.PasswordTooShortError(8),
        {"min_length": 8},
        "the password must be at least 8 characters",
        "invalid-request",
        400,
    ),
    (
        errors.UnknownProfileError("gold", ["server", "client"]),
        {"profile": "gold", "known": ("client", "server")},
        "unknown profile 'gold'; known: client, server",
        "invalid-request",
        400,
    ),
    (
        FormFieldError("x" * 50, "holds a NUL"),
        {"name": "x" * 50, "problem": "holds a NUL"},
        f"the form's field {'x' * 40!r} holds a NUL",
        "invalid-request",
        400,
    ),
    (
        NotAWholeNumberError("days", 3650),
        {"what": "days", "maximum": 3650},
        "days must be a whole number from 1 to 3650",
        "invalid-request",
        400,
    ),
    (
        UnreadableDateError("tomorrow"),
        {"text": "tomorrow"},
        "expires before 'tomorrow': use a date such as 2030-01-31",
        "invalid-request",
        400,
    ),
    (
        errors.InvalidCredentialsError("the bearer token is not valid"),
        {},
        "the bearer token is not valid",
        "authentication",
        401,
    ),
]
IDS = [type(case[0]).__name__ for case in CASES]


@pytest.mark.parametrize(("exc", "data", "detail", "slug", "status"), CASES, ids=IDS)
def test_a_refusal_carries_its_data_and_shows_the_same_words(
    exc: errors.ServiceError, data: dict[str, Any], detail: str, slug: str, status: int
) -> None:
    assert {name: getattr(exc, name) for name in data} == data
    assert exc.detail == str(exc) == detail
    assert slug_for(exc) == slug and status_for(exc) == status


@pytest.mark.parametrize(("exc", "data", "detail", "slug", "status"), CASES, ids=IDS)
def test_the_problem_document_is_the_one_clients_read(
    exc: errors.ServiceError, data: dict[str, Any], detail: str, slug: str, status: int
) -> None:
    body = json.loads(problem(status_for(exc), exc.detail, title=exc.title, slug=slug_for(exc)).body)
    assert body == {"type": f"urn:pocketca:problem:{slug}", "title": exc.title, "status": status, "detail": detail}
    shown = next(c for c in type(exc).__mro__ if not c.__dict__.get("shown_as_parent"))
    assert exc.title == shown.title  # the title of the class the caller is shown


def test_acme_tells_a_second_revocation_by_its_class_not_its_words() -> None:
    assert from_service_error(errors.AlreadyRevokedError("0a1b")).kind == "alreadyRevoked"
    assert from_service_error(errors.ConflictError("the certificate was revoked elsewhere")).kind == "malformed"


def test_every_class_shown_as_parent_carries_data_or_counts_a_guess() -> None:
    """A class the caller cannot tell from its parent earns its place by what it carries."""
    inner = [cls for cls in vars(errors).values() if isinstance(cls, type) and cls.__dict__.get("shown_as_parent")]
    assert errors.CertificateNotFoundError in inner and errors.InvalidCredentialsError in inner
    for cls in inner:
        assert cls is errors.InvalidCredentialsError or "detail" in cls.__dict__, cls.__name__
