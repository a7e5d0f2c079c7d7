"""CMP refusals: the PKIFailureInfo bits (RFC 4210 5.2.3, RFC 9483 3.5) and the one exception that carries one.

Every refusal in the cmp modules is a `CmpError` with its bit and a safe `detail` (never a secret, never a key);
a front door answers it with an `error` message (or, for an enrolment or revocation request, a rejected ip/cp/kup
or rp, as RFC 9483 asks) whose PKIStatusInfo carries the bit and the detail as statusString. `fail_info_for` maps
the authority's own refusals (PolicyError, RevokedCertificateError, ...) to the bit a CMP client expects.
"""

from __future__ import annotations

import enum
from typing import Final

from service.ca.cmp_header import CmpHeader
from service.errors import (
    AuthenticationError,
    ConflictError,
    InvalidCSRError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PolicyError,
    RevokedCertificateError,
    ServiceError,
    UnavailableError,
)


class FailInfo(enum.IntEnum):
    """PKIFailureInfo: the bit numbers, named as the RFC (and `openssl cmp`'s output) names them."""

    badAlg = 0  # unrecognized or unsupported algorithm identifier
    badMessageCheck = 1  # integrity check failed (the MAC or signature does not verify)
    badRequest = 2  # transaction not permitted or supported
    badTime = 3  # messageTime not sufficiently close to the system time
    badCertId = 4  # no certificate could be found matching the criteria
    badDataFormat = 5  # the data submitted has the wrong format
    wrongAuthority = 6  # the authority indicated in the request is different from this one
    incorrectData = 7  # the requester's data is incorrect
    missingTimeStamp = 8
    badPOP = 9  # the proof-of-possession failed
    certRevoked = 10  # the certificate has already been revoked
    certConfirmed = 11  # the certificate has already been confirmed
    wrongIntegrity = 12  # not valid integrity: a MAC where a signature is needed, or no protection
    badRecipientNonce = 13
    timeNotAvailable = 14
    unacceptedPolicy = 15
    unacceptedExtension = 16
    addInfoNotAvailable = 17
    badSenderNonce = 18
    badCertTemplate = 19  # the template asks for what may not be certified
    signerNotTrusted = 20  # the protection certificate is not one this CA trusts
    transactionIdInUse = 21
    unsupportedVersion = 22
    notAuthorized = 23  # the sender may not do this (a spent or unknown secret, someone else's certificate)
    systemUnavail = 24
    systemFailure = 25
    duplicateCertReq = 26


class PKIStatus(enum.IntEnum):
    accepted = 0
    grantedWithMods = 1
    rejection = 2
    waiting = 3
    revocationWarning = 4
    revocationNotification = 5
    keyUpdateWarning = 6


class CmpError(ServiceError):
    """A CMP refusal: `fail_info` is the PKIFailureInfo bit; `detail` is safe to send back as statusString.

    `header` is the request's header when it could be read (so the answer can carry its transactionID and
    nonces); `body_type` the request's body ("ir", "rr", ...) when known, so an enrolment is refused with a
    rejected ip/cp/kup rather than a bare error message.
    """

    title = "CMP request refused"

    def __init__(
        self, fail_info: FailInfo, detail: str, *, header: CmpHeader | None = None, body_type: str | None = None
    ) -> None:
        super().__init__(detail)
        self.fail_info = fail_info
        self.header = header
        self.body_type = body_type

    def __repr__(self) -> str:
        return f"CmpError({self.fail_info.name}, {self.detail!r})"


_BY_CLASS: Final[tuple[tuple[type[ServiceError], FailInfo], ...]] = (  # most specific first
    (InvalidCSRError, FailInfo.badPOP),  # a p10cr whose self-signature does not verify
    (PolicyError, FailInfo.badCertTemplate),
    (RevokedCertificateError, FailInfo.certRevoked),
    (PermissionDeniedError, FailInfo.notAuthorized),
    (AuthenticationError, FailInfo.notAuthorized),
    (NotFoundError, FailInfo.badCertId),
    (ConflictError, FailInfo.certRevoked),  # the authority's only conflict is revoking twice
    (PayloadTooLargeError, FailInfo.badDataFormat),
    (InvalidRequestError, FailInfo.badDataFormat),
    (UnavailableError, FailInfo.systemUnavail),
)


def fail_info_for(error: Exception) -> FailInfo:
    """The bit for any refusal: a CmpError's own, the authority's by class, systemFailure for anything else."""
    if isinstance(error, CmpError):
        return error.fail_info
    for kind, bit in _BY_CLASS:
        if isinstance(error, kind):
            return bit
    return FailInfo.systemFailure


def as_cmp_error(error: Exception, *, header: CmpHeader | None = None, body_type: str | None = None) -> CmpError:
    """A CmpError for any refusal, knowing the request it answers (`header`, `body_type`: pass the message's, so
    the answer carries its transactionID and nonces, and a refused enrolment is a rejected ip/cp/kup); an
    unexpected error keeps its message out of the answer."""
    if isinstance(error, CmpError):
        return error
    if isinstance(error, ServiceError):
        return CmpError(fail_info_for(error), error.detail, header=header, body_type=body_type)
    return CmpError(FailInfo.systemFailure, "internal error", header=header)
