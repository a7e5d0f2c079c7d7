"""Domain exceptions. Standard library only; no HTTP statuses here.

ServiceError                     every refusal the service explains to its caller
├── InvalidRequestError          the input cannot be understood (bad CSR, bad serial, bad field)
│   ├── InvalidCSRError          a CSR that does not parse or whose signature does not verify
│   ├── UnsupportedMediaTypeError  a body in a format we do not read
│   │   └── MediaTypeNotAcceptedError  (accepted, sent)
│   ├── RequestTimeoutError      the body did not arrive in time (seconds)
│   ├── HeadersTooLargeError     the request head is over the limit (max_bytes)
│   ├── JSONTooDeepError         a JSON body nested deeper than we read (max_depth)
│   ├── UnknownStatusError       a status filter that is not one of ours (status, known)
│   ├── LimitOutOfRangeError     a page size out of range (limit, maximum)
│   ├── PasswordTooShortError    (min_length)
│   └── UnknownProfileError      (profile, known)
├── PayloadTooLargeError         a body over the limit (max_bytes)
├── AuthenticationError          no credentials, or credentials we do not recognise
│   └── InvalidCredentialsError  credentials that name no one (an unknown token, a wrong secret, no token at all):
│                                what a guess looks like, counted per address (authority.throttle)
├── PermissionDeniedError        the caller is known but may not do this
│   ├── ScopeDeniedError         a token whose scope does not grant this (scope)
│   ├── PolicyError              the request breaks one or more policy rules (violations: all are listed)
│   ├── RevokedCertificateError  the presented certificate has been revoked (serial)
│   └── RateLimitedError         too many requests just now (retry_after)
│       ├── IssuanceRateLimitedError  too many issuances for this token or account (who, per_minute, retry_after)
│       └── TooManyFailuresError      too many failed credentials from this address (retry_after)
├── NotFoundError                no such certificate, token, ...
│   ├── CertificateNotFoundError (serial)
│   ├── TokenNotFoundError       (token_id)
│   ├── IssuerNotFoundError      (issuer, known)
│   └── CRLNotPublishedError     a root whose CRL is not signed yet (issuer)
├── ConflictError                the change is already made
│   └── AlreadyRevokedError      revoking twice (serial)
└── UnavailableError             a dependency (database, CA key) is not usable now
    └── CRLExpiredError          the CRL is past its nextUpdate and no fresh one was built (expired_at)
ConfigurationError               start-up problems: bad settings, a wrong CA passphrase, a bad import, a bad local file
├── SettingError                 a setting whose value cannot be used (carries the setting)
├── FileError                    a file that cannot be used (carries the path, and what it was meant to be)
├── CAExistsError, NoCAError     a data dir with a CA already, or none yet (carry the data dir)
└── CACheckError                 a CA that cannot issue here (carries every problem found)
UnreachableError                 a server or database we could not talk to (no answer, TLS verification failed, our
                                 client certificate not accepted); the message names it and says what to do

A refusal carries its data (the serial, the limit, the scope) as attributes, and its `detail` is built from them
when it is shown. `detail` is always safe to show to the caller: never a key, a token or a passphrase.

A subclass marked `shown_as_parent` is a distinction made inside (to carry data, to count a guess): the caller
sees its parent's kind of problem, never a new one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
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


class ConfigurationError(Exception):
    """A problem that stops the service from starting; the message is meant for the operator. The subclasses
    carry what it is about (the setting, the path, the data dir, the problems found) and build the message from
    it when it is shown."""


class SettingError(ConfigurationError):
    """A setting whose value cannot be used: `setting` names it as the operator gives it (POCKETCA_X, --x)."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(setting, problem)
        self.setting = setting
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.setting}: {self.problem}"


class FileError(ConfigurationError):
    """A file that cannot be used: `path`, and `what` it was meant to be (a flag, "the CA certificate"), if said."""

    def __init__(self, path: Path, problem: str, *, what: str | None = None) -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem
        self.what = what

    def __str__(self) -> str:
        return f"{self.what} {self.path}: {self.problem}" if self.what else f"{self.path}: {self.problem}"


class CAExistsError(ConfigurationError):
    """The data dir has a CA already: nothing makes or imports a second one over it."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.data_dir = data_dir

    def __str__(self) -> str:
        return f"a CA already exists in {self.data_dir}"


class NoCAError(ConfigurationError):
    """The data dir has no CA yet; `next_step` says what makes one."""

    def __init__(self, data_dir: Path, next_step: str = "run `pocketca init` or `pocketca serve`") -> None:
        super().__init__(data_dir, next_step)
        self.data_dir = data_dir
        self.next_step = next_step

    def __str__(self) -> str:
        return f"no CA in {self.data_dir}: {self.next_step}"


class CACheckError(ConfigurationError):
    """A CA certificate (made elsewhere) that cannot issue here: every problem found, not just the first."""

    def __init__(self, action: str, problems: Sequence[str]) -> None:
        super().__init__(action, list(problems))
        self.action = action  # "import", "rotate to"
        self.problems = list(problems)

    def __str__(self) -> str:
        return f"cannot {self.action} this CA: " + "; ".join(self.problems)


class UnreachableError(Exception):
    """A server or database we could not talk to; the message names it and says what to do."""
