"""The ServiceError tree: every refusal the service explains to its caller (drawn in service.errors)."""


from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import ClassVar


class ServiceError(Exception):
    title = "Request failed"
    shown_as_parent: ClassVar[bool] = False  # see the module's docstring

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self._detail = detail

    @property
    def detail(self) -> str:
        """What the caller is told; a refusal that carries data builds it from its data."""
        return self._detail

    def __str__(self) -> str:
        return self.detail

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"


class InvalidRequestError(ServiceError):
    title = "Invalid request"


class InvalidCSRError(InvalidRequestError):
    title = "Invalid CSR"


class UnsupportedMediaTypeError(InvalidRequestError):
    title = "Unsupported media type"


class MediaTypeNotAcceptedError(UnsupportedMediaTypeError):
    shown_as_parent = True

    def __init__(self, accepted: Iterable[str], sent: str | None) -> None:
        super().__init__()
        self.accepted = tuple(accepted)
        self.sent = sent

    @property
    def detail(self) -> str:
        return f"send {' or '.join(self.accepted)}, not {self.sent or 'nothing'!r}"


class PayloadTooLargeError(ServiceError):
    title = "Payload too large"

    def __init__(self, max_bytes: int) -> None:
        super().__init__()
        self.max_bytes = max_bytes

    @property
    def detail(self) -> str:
        return f"the request body is over {self.max_bytes} bytes"


class AuthenticationError(ServiceError):
    title = "Authentication required"


class InvalidCredentialsError(AuthenticationError):
    """Not an expired or used-up credential of someone we know: one that names no one."""

    shown_as_parent = True


class PermissionDeniedError(ServiceError):
    title = "Forbidden"


class ScopeDeniedError(PermissionDeniedError):
    shown_as_parent = True

    def __init__(self, scope: str) -> None:
        super().__init__()
        self.scope = scope

    @property
    def detail(self) -> str:
        return f"a {self.scope!r} token may not do this"


class PolicyError(PermissionDeniedError):
    """Carries every rule the request broke, not just the first."""

    title = "Policy violation"

    def __init__(self, violations: Sequence[str]) -> None:
        super().__init__()
        self.violations = list(violations)

    @property
    def detail(self) -> str:
        return "; ".join(self.violations)


class RevokedCertificateError(PermissionDeniedError):
    title = "Certificate revoked"

    def __init__(self, serial: str) -> None:
        super().__init__()
        self.serial = serial

    @property
    def detail(self) -> str:
        return f"certificate {self.serial} has been revoked"


class RateLimitedError(PermissionDeniedError):
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class IssuanceRateLimitedError(RateLimitedError):
    shown_as_parent = True

    def __init__(self, who: str, per_minute: int, retry_after: int) -> None:
        super().__init__("", retry_after)
        self.who = who  # "token" or "account"
        self.per_minute = per_minute

    @property
    def detail(self) -> str:
        return f"this {self.who} may issue {self.per_minute} certificates a minute; retry in {self.retry_after} s"


class TooManyFailuresError(RateLimitedError):
    shown_as_parent = True

    def __init__(self, retry_after: int) -> None:
        super().__init__("", retry_after)

    @property
    def detail(self) -> str:
        return f"too many failed logins and bearer tokens from this address; retry in {self.retry_after} s"


class RequestTimeoutError(InvalidRequestError):
    title = "Request timeout"

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    @property
    def detail(self) -> str:
        return f"the request body did not arrive within {self.seconds:g} s"


class HeadersTooLargeError(InvalidRequestError):
    title = "Request header fields too large"

    def __init__(self, max_bytes: int) -> None:
        super().__init__()
        self.max_bytes = max_bytes

    @property
    def detail(self) -> str:
        return f"the request head is over {self.max_bytes} bytes"


class JSONTooDeepError(InvalidRequestError):
    shown_as_parent = True

    def __init__(self, max_depth: int) -> None:
        super().__init__()
        self.max_depth = max_depth

    @property
    def detail(self) -> str:
        return f"the JSON body nests arrays and objects deeper than {self.max_depth} levels"


class UnknownStatusError(InvalidRequestError):
    shown_as_parent = True

    def __init__(self, status: str, known: Iterable[str]) -> None:
        super().__init__()
        self.status = status
        self.known = tuple(known)

    @property
    def detail(self) -> str:
        return f"status must be one of {', '.join(self.known)}"


class LimitOutOfRangeError(InvalidRequestError):
    shown_as_parent = True

    def __init__(self, limit: int, maximum: int) -> None:
        super().__init__()
        self.limit = limit
        self.maximum = maximum

    @property
    def detail(self) -> str:
        return f"limit must be between 1 and {self.maximum}"


class PasswordTooShortError(InvalidRequestError):
    shown_as_parent = True

    def __init__(self, min_length: int) -> None:
        super().__init__()
        self.min_length = min_length

    @property
    def detail(self) -> str:
        return f"the password must be at least {self.min_length} characters"


class UnknownProfileError(InvalidRequestError):
    shown_as_parent = True

    def __init__(self, profile: str, known: Iterable[str]) -> None:
        super().__init__()
        self.profile = profile
        self.known = tuple(sorted(known))

    @property
    def detail(self) -> str:
        return f"unknown profile {self.profile!r}; known: {', '.join(self.known)}"


class NotFoundError(ServiceError):
    title = "Not found"


class CertificateNotFoundError(NotFoundError):
    shown_as_parent = True

    def __init__(self, serial: str) -> None:
        super().__init__()
        self.serial = serial

    @property
    def detail(self) -> str:
        return f"no certificate with serial {self.serial}"


class TokenNotFoundError(NotFoundError):
    shown_as_parent = True

    def __init__(self, token_id: str) -> None:
        super().__init__()
        self.token_id = token_id

    @property
    def detail(self) -> str:
        return f"no token with id {self.token_id}"


class IssuerNotFoundError(NotFoundError):
    shown_as_parent = True

    def __init__(self, issuer: str, known: Iterable[str]) -> None:
        super().__init__()
        self.issuer = issuer
        self.known = tuple(known)

    @property
    def detail(self) -> str:
        return f"no issuer {self.issuer[:40]!r}; known: {', '.join(self.known)}"  # the caller's text, cut short


class CRLNotPublishedError(NotFoundError):
    shown_as_parent = True

    def __init__(self, issuer: str) -> None:
        super().__init__()
        self.issuer = issuer

    @property
    def detail(self) -> str:
        return f"no CRL of the root {self.issuer} is published yet: `pocketca ca crl` signs one"


class ConflictError(ServiceError):
    title = "Conflict"


class AlreadyRevokedError(ConflictError):
    shown_as_parent = True

    def __init__(self, serial: str) -> None:
        super().__init__()
        self.serial = serial

    @property
    def detail(self) -> str:
        return f"certificate {self.serial} is already revoked"


class UnavailableError(ServiceError):
    title = "Service unavailable"


class CRLExpiredError(UnavailableError):
    shown_as_parent = True

    def __init__(self, expired_at: dt.datetime) -> None:
        super().__init__()
        self.expired_at = expired_at

    @property
    def detail(self) -> str:
        return f"the CRL expired at {self.expired_at.isoformat()} and no fresh one was built"
