"""ACME problem documents (RFC 8555 §6.7): `urn:ietf:params:acme:error:*`. The authority's ACME refusals; the
front door (service.authority.acme.problems) renders them as application/problem+json."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from service import errors

ERROR_NS = "urn:ietf:params:acme:error:"


class AcmeProblem(Exception):
    """A refusal to an ACME client: its `kind` is the RFC 8555 error type without the namespace."""

    def __init__(
        self,
        kind: str,
        detail: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
        subproblems: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status
        self.headers = headers or {}
        self.subproblems = subproblems

    def document(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": ERROR_NS + self.kind,
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
        }
        if self.subproblems:
            body["subproblems"] = self.subproblems
        return body


def malformed(detail: str, status: int = 400) -> AcmeProblem:
    return AcmeProblem("malformed", detail, status=status)


def unauthorized(detail: str) -> AcmeProblem:
    return AcmeProblem("unauthorized", detail, status=403)


def from_service_error(exc: errors.ServiceError) -> AcmeProblem:
    """The authority's refusals, in ACME's words."""
    if isinstance(exc, errors.RateLimitedError):
        return AcmeProblem("rateLimited", exc.detail, status=429, headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, errors.PolicyError):
        return AcmeProblem("badCSR", "; ".join(exc.violations), status=400)
    if isinstance(exc, errors.InvalidCSRError):
        return AcmeProblem("badCSR", exc.detail, status=400)
    if isinstance(exc, errors.PermissionDeniedError | errors.AuthenticationError):
        return unauthorized(exc.detail)
    if isinstance(exc, errors.NotFoundError):
        return malformed(exc.detail, status=404)
    if isinstance(exc, errors.AlreadyRevokedError):
        return AcmeProblem("alreadyRevoked", exc.detail)
    if isinstance(exc, errors.ConflictError):
        return malformed(exc.detail, 409)
    if isinstance(exc, errors.PayloadTooLargeError):
        return malformed(exc.detail, status=413)
    if isinstance(exc, errors.UnavailableError):
        return AcmeProblem("serverInternal", exc.detail, status=503)
    return malformed(exc.detail)
