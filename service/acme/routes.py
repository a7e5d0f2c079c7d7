"""The ACME HTTP side (RFC 8555 §7): thin handlers that verify the JWS, call the ACME application
(service.authority.acme) and answer with Replay-Nonce and Link headers; every refusal is an
`urn:ietf:params:acme:error:*` problem document. exchange: reading and answering a request; account_routes,
order_routes, certificate_routes: the resources, included here in the order the router has always had them.

The JWS-signed routes are left out of the OpenAPI document: they are RFC 8555's, not ours to describe."""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from service.acme import account_routes, certificate_routes, order_routes
from service.acme.exchange import ServerDep, problem_answer, server_for, urls_for
from service.acme.problems import problem_response
from service.acme.server import AcmeConfig
from service.authority.acme.nonces import DatabaseError
from service.authority.acme.problems import AcmeProblem, from_service_error
from service.authority.acme.urls import PREFIX, Urls
from service.errors import ServiceError
from service.http.bodies import RequestModel
from service.http.callers import CallerDep
from service.http.lean import LeanRoute

log = logging.getLogger("pocketca.acme")
router = APIRouter(prefix=PREFIX)


def install(app: FastAPI, config: AcmeConfig) -> None:
    app.state.acme_config = config
    app.state.acme = None
    app.include_router(router)


def edge_refusal(exc: ServiceError, status: int, scope: Scope) -> Response:
    """A refusal made before the ACME server saw the request (the request limits, a NUL in the path, JSON nested
    too deep: service.http.limits), as the ACME document a client of this prefix reads, with the edge's status
    and, as every ACME answer, a fresh Replay-Nonce (RFC 8555 §6.5)."""
    problem = from_service_error(exc)
    refusal = AcmeProblem(problem.kind, exc.detail, status=status, headers=problem.headers)
    state = scope["app"].state
    if getattr(state, "authority", None) is None:  # before the lifespan made it: no nonce to give
        return problem_response(refusal)
    server = server_for(state)
    return problem_answer(server, Urls(server.authority.public_url), refusal)


# --- directory and nonces -------------------------------------------------------------------------------------


@router.get("/directory", summary="ACME directory (RFC 8555 §7.1.1)")
async def directory(request: Request, server: ServerDep) -> JSONResponse:
    urls = urls_for(request)
    body = {
        "newNonce": urls.new_nonce,
        "newAccount": urls.new_account,
        "newOrder": urls.new_order,
        "revokeCert": urls.revoke_cert,
        "keyChange": urls.key_change,
        "renewalInfo": urls.renewal_info,
        "meta": server.meta(),
    }
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=60"})


# the hottest ACME route, and the one anybody may call at any rate: served ahead of the router (http.lean)
nonce_router = APIRouter(route_class=LeanRoute)


@nonce_router.api_route(f"{PREFIX}/new-nonce", methods=["GET", "HEAD"], include_in_schema=False)
async def new_nonce(request: Request, server: ServerDep) -> Response:
    urls = urls_for(request)
    try:
        if server.nonces.needs_key:  # once per worker: the key is read from the database (made there if new)
            await run_in_threadpool(server.nonces.load_key)
        nonce = server.nonces.issue()  # an HMAC: nothing written
    except DatabaseError:
        log.exception("ACME new-nonce: the database failed")
        unavailable = AcmeProblem("serverInternal", "the database is not usable; retry later", status=503)
        unavailable.headers["Retry-After"] = "5"
        return problem_response(unavailable)
    status = 200 if request.method == "HEAD" else 204
    headers = {"Replay-Nonce": nonce, "Cache-Control": "no-store", "Link": f'<{urls.directory}>;rel="index"'}
    return Response(status_code=status, headers=headers)


router.include_router(account_routes.router)
router.include_router(order_routes.router)
router.include_router(certificate_routes.router)


# --- external account binding keys (operators) ------------------------------------------------------------------------


class EABRequest(RequestModel):
    profile: str | None = None


class EABResponse(BaseModel):
    kid: str
    hmac_key: str
    profile: str | None


@router.post("/eab", status_code=201, response_model=EABResponse, summary="Create an ACME external account binding key")
async def create_eab(body: EABRequest, caller: CallerDep, server: ServerDep, response: Response) -> EABResponse:
    """Admin token. The HMAC key is shown once; give it and the kid to the ACME client (certbot --eab-kid ...)."""
    response.headers["Cache-Control"] = "no-store"  # the answer holds the HMAC key: no cache may keep it
    key = await run_in_threadpool(server.accounts.create_eab_key, caller=caller, profile=body.profile)
    return EABResponse(kid=key.kid, hmac_key=key.hmac_key, profile=key.profile)
