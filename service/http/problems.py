"""Every error leaves as application/problem+json (RFC 9457); the status comes from one table, along the MRO."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from service import errors

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("pocketca.error")

STATUS_FOR: dict[type[errors.ServiceError], int] = {
    errors.ServiceError: 400,
    errors.InvalidRequestError: 400,
    errors.UnsupportedMediaTypeError: 415,
    errors.RequestTimeoutError: 408,
    errors.HeadersTooLargeError: 431,
    errors.RateLimitedError: 429,
    errors.PayloadTooLargeError: 413,
    errors.AuthenticationError: 401,
    errors.PermissionDeniedError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.UnavailableError: 503,
}


def status_for(exc: errors.ServiceError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_FOR:
            return STATUS_FOR[cls]
    return 400


def problem(
    status: int, detail: str, *, title: str | None = None, slug: str | None = None, **extra: Any
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase
    body = {
        "type": f"urn:pocketca:problem:{slug}" if slug else "about:blank",
        "title": title or phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    headers = {"WWW-Authenticate": 'Bearer realm="pocketca"'} if status == 401 else {}
    if status in (408, 413, 431):
        headers["Connection"] = "close"  # the rest of this request may still be on the wire
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def slug_for(exc: errors.ServiceError) -> str:
    """InvalidCSRError -> invalid-csr, PayloadTooLargeError -> payload-too-large (acronyms stay one word). A class
    `shown_as_parent` (a distinction made inside: data it carries, a guess counted) is no new problem type for
    clients: the slug is its nearest ancestor's that is shown (CertificateNotFoundError -> not-found)."""
    cls = next(c for c in type(exc).__mro__ if not c.__dict__.get("shown_as_parent", False))
    name = cls.__name__.removesuffix("Error")
    return _WORDS.sub("-", name).lower()


_WORDS = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ServiceError)
    extra: dict[str, Any] = {}
    if isinstance(exc, errors.PolicyError):
        extra["violations"] = exc.violations
    response = problem(status_for(exc), exc.detail, title=exc.title, slug=slug_for(exc), **extra)
    if isinstance(exc, errors.RateLimitedError):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only locations and messages: pydantic's "input" could echo a secret back.
    issues = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()]
    detail = "; ".join(f"{'.'.join(i['loc'])}: {i['msg']}" for i in issues) or "the request is not valid"
    return problem(422, detail, title="Invalid request", slug="validation", errors=issues)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    response = problem(exc.status_code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        response.headers["Allow"] = allowed
    return response


def _allowed_methods(request: Request) -> str:
    """Every method the path allows. Starlette's 405 names only the methods of the first route whose path matched,
    and a path may be served by several routes (GET /tokens and POST /tokens): ask every route, by method."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "the server could not complete the request; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
