"""Domain exceptions. Standard library only; no HTTP statuses here.

ServiceError                     every refusal the service explains to its caller
├── InvalidRequestError          the input cannot be understood (bad CSR, bad serial, bad field)
│   ├── InvalidCSRError          a CSR that does not parse or whose signature does not verify
│   ├── UnsupportedMediaTypeError  a body in a format we do not read
│   ├── RequestTimeoutError      the body did not arrive in time
│   └── HeadersTooLargeError     the request head is over the limit
├── PayloadTooLargeError         a body over the limit
├── AuthenticationError          no credentials, or credentials we do not recognise
│   └── InvalidCredentialsError  credentials that name no one (an unknown token, a wrong secret, no token at all):
│                                what a guess looks like, counted per address (authority.throttle)
├── PermissionDeniedError        the caller is known but may not do this
│   ├── PolicyError              the request breaks one or more policy rules (all are listed)
│   ├── RevokedCertificateError  the presented certificate has been revoked
│   └── RateLimitedError         too many issuances for this token just now (carries retry_after)
├── NotFoundError                no such certificate, token, ...
├── ConflictError                the change is already made (revoking twice)
└── UnavailableError             a dependency (database, CA key) is not usable now
ConfigurationError               start-up problems: bad settings, a wrong CA passphrase, a bad import, a bad local file
UnreachableError                 a server or database we could not talk to (no answer, TLS verification failed, our
                                 client certificate not accepted); the message names it and says what to do

`detail` is always safe to show to the caller: never a key, a token or a passphrase.
"""

from __future__ import annotations

from collections.abc import Sequence


class ServiceError(Exception):
    title = "Request failed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequestError(ServiceError):
    title = "Invalid request"


class InvalidCSRError(InvalidRequestError):
    title = "Invalid CSR"


class UnsupportedMediaTypeError(InvalidRequestError):
    title = "Unsupported media type"


class PayloadTooLargeError(ServiceError):
    title = "Payload too large"


class AuthenticationError(ServiceError):
    title = "Authentication required"


class InvalidCredentialsError(AuthenticationError):
    """Not an expired or used-up credential of someone we know: one that names no one."""


class PermissionDeniedError(ServiceError):
    title = "Forbidden"


class PolicyError(PermissionDeniedError):
    """Carries every rule the request broke, not just the first."""

    title = "Policy violation"

    def __init__(self, violations: Sequence[str]) -> None:
        self.violations = list(violations)
        super().__init__("; ".join(self.violations))


class RevokedCertificateError(PermissionDeniedError):
    title = "Certificate revoked"

    def __init__(self, serial: str) -> None:
        self.serial = serial
        super().__init__(f"certificate {serial} has been revoked")


class RateLimitedError(PermissionDeniedError):
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class RequestTimeoutError(InvalidRequestError):
    title = "Request timeout"


class HeadersTooLargeError(InvalidRequestError):
    title = "Request header fields too large"


class NotFoundError(ServiceError):
    title = "Not found"


class ConflictError(ServiceError):
    title = "Conflict"


class UnavailableError(ServiceError):
    title = "Service unavailable"


class ConfigurationError(Exception):
    """A problem that stops the service from starting; the message is meant for the operator."""


class UnreachableError(Exception):
    """A server or database we could not talk to; the message names it and says what to do."""
