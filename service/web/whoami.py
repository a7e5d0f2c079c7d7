"""GET /whoami for browsers (Accept: text/html): a page naming the certificate's holder, or saying why not.

The route matches only requests that ask for HTML, so it sits before the JSON route of the same path
(service.api.routes.whoami), which answers every other client. """

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from service.errors import AuthenticationError, RevokedCertificateError, ServiceError
from service.http.callers import AuthorityDep, PeerCertificateDep, require_client
from service.http.lean import LeanRoute
from service.web.pages import render, wants_html


class HTMLRoute(LeanRoute):
    """Matches only when the request's Accept names text/html: content negotiation between two routes. Lean, as
    the JSON route is: both are installed on the app's own router, this one first (http.lean.install)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not wants_html(scope["headers"]):
            return Match.NONE, {}
        return super().matches(scope)


router = APIRouter(route_class=HTMLRoute)


@router.get("/whoami", include_in_schema=False)
async def whoami_page(request: Request, authority: AuthorityDep, peer: PeerCertificateDep) -> Response:
    if peer is None:
        return _refusal(AuthenticationError("your browser did not present a client certificate"), "none")
    try:
        identity = await require_client(request, authority, peer)
    except RevokedCertificateError as exc:
        return _refusal(exc, "revoked")
    except ServiceError as exc:
        return _refusal(exc, "refused")
    return render("whoami.html", identity=identity.summary, state="ok")


def _refusal(exc: ServiceError, state: str) -> Response:
    status = 401 if isinstance(exc, AuthenticationError) else 403
    return render("whoami.html", status_code=status, identity=None, state=state, detail=exc.detail)
