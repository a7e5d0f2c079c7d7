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

from service.errors.operator import (
    CACheckError,
    CAExistsError,
    ConfigurationError,
    FileError,
    NoCAError,
    SettingError,
    UnreachableError,
)
from service.errors.refusals import (
    AlreadyRevokedError,
    AuthenticationError,
    CertificateNotFoundError,
    ConflictError,
    CRLExpiredError,
    CRLNotPublishedError,
    HeadersTooLargeError,
    InvalidCredentialsError,
    InvalidCSRError,
    InvalidRequestError,
    IssuanceRateLimitedError,
    IssuerNotFoundError,
    JSONTooDeepError,
    LimitOutOfRangeError,
    MediaTypeNotAcceptedError,
    NotFoundError,
    PasswordTooShortError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PolicyError,
    RateLimitedError,
    RequestTimeoutError,
    RevokedCertificateError,
    ScopeDeniedError,
    ServiceError,
    TokenNotFoundError,
    TooManyFailuresError,
    UnavailableError,
    UnknownProfileError,
    UnknownStatusError,
    UnsupportedMediaTypeError,
)

__all__ = [
    "AlreadyRevokedError",
    "AuthenticationError",
    "CACheckError",
    "CAExistsError",
    "CRLExpiredError",
    "CRLNotPublishedError",
    "CertificateNotFoundError",
    "ConfigurationError",
    "ConflictError",
    "FileError",
    "HeadersTooLargeError",
    "InvalidCSRError",
    "InvalidCredentialsError",
    "InvalidRequestError",
    "IssuanceRateLimitedError",
    "IssuerNotFoundError",
    "JSONTooDeepError",
    "LimitOutOfRangeError",
    "MediaTypeNotAcceptedError",
    "NoCAError",
    "NotFoundError",
    "PasswordTooShortError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PolicyError",
    "RateLimitedError",
    "RequestTimeoutError",
    "RevokedCertificateError",
    "ScopeDeniedError",
    "ServiceError",
    "SettingError",
    "TokenNotFoundError",
    "TooManyFailuresError",
    "UnavailableError",
    "UnknownProfileError",
    "UnknownStatusError",
    "UnreachableError",
    "UnsupportedMediaTypeError",
]
