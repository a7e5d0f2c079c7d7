"""The two hottest routes without FastAPI's per-request machinery, as a plain ASGI middleware.

FastAPI resolves a route's dependencies, parameters and response model on every request; for POST /csr that
cost as much as signing the certificate, and for GET /whoami ten times the route's own work (bench/SPEED.md).
This middleware answers those two itself with the same pieces their routes use: the `deps`
functions for the caller, `routes.csr.CSRQuery` and `routes.csr.issue`, `IdentityResponse`, and the app's own
exception handlers for every error. It sits inside the access log and the request limits. An app with
dependency overrides (tests over ASGI) gets the routes, which resolve those as FastAPI defines.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.deps import get_authority, optional_caller, peer_certificate, require_caller, require_client
from service.api.routes.csr import CSRQuery, issue
from service.api.schemas import IdentityResponse
from service.ca.inspect import CertificateSummary
from service.web.pages import wants_html


class FastPaths:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = _ROUTES.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        if handler is _whoami and wants_html(Headers(scope=scope)):
            handler = None  # a browser: the HTML page's route (service.web.whoami) answers
        app: FastAPI | None = scope.get("app")
        if handler is None or app is None or app.dependency_overrides:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await handler(request)
        except Exception as exc:  # rendered exactly as the app renders it for any route
            render = _handler(app, exc)
            if render is None:  # unexpected: up to Starlette's ServerErrorMiddleware, as from a route
                raise
            response = await render(request, exc)
        await response(scope, receive, send)


async def _sign_csr(request: Request) -> Response:
    authority = await get_authority(request)
    caller = await require_caller(await optional_caller(request, authority, await peer_certificate(request)))
    try:
        query = CSRQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        errors = [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_input=False)]
        raise RequestValidationError(errors) from None
    return await issue(request, authority, caller, query.profile, query.validity_days)


async def _whoami(request: Request) -> Response:
    authority = await get_authority(request)
    identity = await require_client(request, authority, await peer_certificate(request))  # revocation: each time
    return Response(_identity_document(identity.summary), media_type="application/json")


@functools.lru_cache(maxsize=4096)
def _identity_document(summary: CertificateSummary) -> bytes:
    """What /whoami says depends only on the certificate: serialized once per certificate."""
    fields = IdentityResponse.summary_fields(summary)
    return IdentityResponse(issuer=summary.issuer, **fields).model_dump_json().encode()  # type: ignore[arg-type]


_ROUTES: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]] = {
    ("POST", "/csr"): _sign_csr,
    ("GET", "/whoami"): _whoami,
}


def _handler(app: FastAPI, exc: Exception) -> Any:
    """The app's handler for this exception along its MRO; None for the catch-all (a bug), which the app runs
    in ServerErrorMiddleware, re-raising to the server afterwards."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in app.exception_handlers:
            return app.exception_handlers[cls]
    return None
