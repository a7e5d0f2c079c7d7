"""The ACME HTTP side (RFC 8555 §7): thin handlers that verify the JWS, call accounts/orders and answer with
Replay-Nonce and Link headers; every refusal is an `urn:ietf:params:acme:error:*` problem document.

The JWS-signed routes are left out of the OpenAPI document: they are RFC 8555's, not ours to describe."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from service.acme.problems import problem_response
from service.acme.server import AcmeConfig, AcmeServer
from service.authority import AcmeCaller, Authority, LocalCaller
from service.authority.acme import jws
from service.authority.acme.accounts import Account, render
from service.authority.acme.nonces import DatabaseError
from service.authority.acme.orders import RETRY_AFTER, Order
from service.authority.acme.problems import AcmeProblem, from_service_error, malformed, unauthorized
from service.authority.acme.renewal import renewal_window
from service.authority.acme.urls import PREFIX, Urls
from service.ca.inspect import format_serial
from service.errors import ServiceError
from service.http.bodies import RequestModel
from service.http.callers import CallerDep
from service.http.lean import LeanRoute
from service.http.proxy import client_address  # X-Forwarded-For's last hop from a trusted proxy

log = logging.getLogger("pocketca.acme")
router = APIRouter(prefix=PREFIX)
JOSE_JSON = "application/jose+json"
PEM_CHAIN = "application/pem-certificate-chain"
REASON_CODES = {
    0: "unspecified",
    1: "keyCompromise",
    2: "cACompromise",
    3: "affiliationChanged",
    4: "superseded",
    5: "cessationOfOperation",
    9: "privilegeWithdrawn",
    10: "aACompromise",
}


def install(app: FastAPI, config: AcmeConfig) -> None:
    app.state.acme_config = config
    app.state.acme = None
    app.include_router(router)


async def get_server(request: Request) -> AcmeServer:
    """`async def`: FastAPI runs a plain `def` dependency in a worker thread, a hop that costs more than this."""
    return _server(request.app.state)


def _server(state: Any) -> AcmeServer:
    if state.acme is None or state.acme.authority is not state.authority:
        state.acme = AcmeServer(state.authority, state.acme_config)
    server: AcmeServer = state.acme
    return server


def edge_refusal(exc: ServiceError, status: int, scope: Scope) -> Response:
    """A refusal made before the ACME server saw the request (the request limits, a NUL in the path, JSON nested
    too deep: service.http.limits), as the ACME document a client of this prefix reads, with the edge's status
    and, as every ACME answer, a fresh Replay-Nonce (RFC 8555 §6.5)."""
    problem = from_service_error(exc)
    refusal = AcmeProblem(problem.kind, exc.detail, status=status, headers=problem.headers)
    state = scope["app"].state
    if getattr(state, "authority", None) is None:  # before the lifespan made it: no nonce to give
        return problem_response(refusal)
    server = _server(state)
    return _problem(server, Urls(server.authority.public_url), refusal)


ServerDep = Annotated[AcmeServer, Depends(get_server)]


def _urls(request: Request) -> Urls:
    """From POCKETCA_PUBLIC_URL, never from the Host header (a directory with another host is cached)."""
    authority: Authority = request.app.state.authority
    return Urls(authority.public_url)


def _headers(server: AcmeServer, urls: Urls, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {
        "Replay-Nonce": server.nonces.issue(),
        "Link": f'<{urls.directory}>;rel="index"',
        "Cache-Control": "no-store",
    }
    headers.update(extra or {})
    return headers


def _problem(server: AcmeServer, urls: Urls, exc: AcmeProblem) -> JSONResponse:
    response = problem_response(exc)
    try:
        response.headers.update(_headers(server, urls))  # badNonce needs a fresh one; every answer gets one
    except Exception:  # the database is down: the problem still goes out
        log.exception("no nonce for a problem response")
    response.headers.update(exc.headers)
    return response


Handler = Callable[[AcmeServer, Urls, bytes, str, str | None], Response]


async def _signed(request: Request, server: AcmeServer, handler: Handler) -> Response:
    """Reads the body, then runs the (blocking) handler in a thread; maps every error to an ACME problem."""
    urls = _urls(request)
    body = await request.body()
    url = urls.base + request.url.path

    def run() -> Response:
        try:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != JOSE_JSON:
                raise AcmeProblem("malformed", f"send Content-Type: {JOSE_JSON}", status=415)
            with server.nonces.spending():  # the nonce the JWS carries is spent before the answer leaves
                return handler(server, urls, body, url, client_address(request))
        except AcmeProblem as exc:
            return _problem(server, urls, exc)
        except ServiceError as exc:
            return _problem(server, urls, from_service_error(exc))
        except DatabaseError:
            log.exception("ACME %s: the database failed", request.url.path)
            unavailable = AcmeProblem("serverInternal", "the database is not usable; retry later", status=503)
            unavailable.headers["Retry-After"] = "5"
            return problem_response(unavailable)  # no nonce: that would need the database
        except Exception:
            log.exception("ACME %s failed", request.url.path)
            return _problem(
                server, urls, AcmeProblem("serverInternal", "the server failed; it has been logged", status=500)
            )

    return await run_in_threadpool(run)


def _verify(
    server: AcmeServer, urls: Urls, body: bytes, url: str, request: Request
) -> tuple[jws.VerifiedRequest, Account]:
    """A request signed by an account (kid); the access log names the account."""
    found: list[Account] = []

    def lookup(kid: str) -> dict[str, Any]:
        found.append(server.accounts.by_kid(kid, urls))
        return found[0].jwk

    verified = jws.verify_request(body, url=url, nonces=server.nonces, allow_jwk=False, lookup_kid=lookup)
    request.state.caller = found[0].caller().label
    return verified, found[0]


def _json(
    server: AcmeServer, urls: Urls, body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=_headers(server, urls, headers))


# --- directory and nonces -------------------------------------------------------------------------------------


@router.get("/directory", summary="ACME directory (RFC 8555 §7.1.1)")
async def directory(request: Request, server: ServerDep) -> JSONResponse:
    urls = _urls(request)
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
    urls = _urls(request)
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


# --- accounts ---------------------------------------------------------------------------------------------------


@router.post("/new-account", include_in_schema=False)
async def new_account(request: Request, server: ServerDep) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified = jws.verify_request(
            body,
            url=url,
            nonces=server.nonces,
            allow_jwk=True,
            require_jwk=True,
            lookup_kid=lambda kid: {},
        )
        account, created = server.accounts.new_account(verified, urls, address)
        request.state.caller = account.caller().label
        return _json(
            server, urls, render(account, urls), 201 if created else 200, headers={"Location": urls.account(account.id)}
        )

    return await _signed(request, server, handle)


@router.post("/account/{account_id}", include_in_schema=False)
async def account(request: Request, server: ServerDep, account_id: str) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = _verify(server, urls, body, url, request)
        if account.id != account_id:
            raise unauthorized("an account may only read and change itself")
        updated = server.accounts.update(account, verified, address)
        return _json(server, urls, render(updated, urls), headers={"Location": urls.account(updated.id)})

    return await _signed(request, server, handle)


@router.post("/account/{account_id}/orders", include_in_schema=False)
async def account_orders(request: Request, server: ServerDep, account_id: str) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = _verify(server, urls, body, url, request)
        if account.id != account_id or not verified.is_post_as_get:
            raise unauthorized("an account may only list its own orders, with POST-as-GET")
        return _json(server, urls, {"orders": [urls.order(o) for o in server.orders.list_orders(account)]})

    return await _signed(request, server, handle)


@router.post("/key-change", include_in_schema=False)
async def key_change(request: Request, server: ServerDep) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = _verify(server, urls, body, url, request)
        if verified.kid != urls.account(account.id):
            raise unauthorized("keyChange must be signed with the account's kid")
        updated = server.accounts.change_key(account, verified, urls, address)
        return _json(server, urls, render(updated, urls), headers={"Location": urls.account(updated.id)})

    return await _signed(request, server, handle)


# --- orders, authorizations, challenges ------------------------------------------------------------------------


def _order_response(server: AcmeServer, urls: Urls, order: Order, status: int = 200) -> JSONResponse:
    """An order with its Location; Retry-After while the client should poll it (pending or processing)."""
    headers = {"Location": urls.order(order.id)}
    if status == 200 and order.status in ("pending", "processing"):
        headers["Retry-After"] = RETRY_AFTER
    return _json(server, urls, server.orders.render_order(order, urls), status, headers=headers)


@router.post("/new-order", include_in_schema=False)
async def new_order(request: Request, server: ServerDep) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = _verify(server, urls, body, url, request)
        return _order_response(server, urls, server.orders.new_order(account, verified.payload(), address), 201)

    return await _signed(request, server, handle)


@router.post("/order/{order_id}", include_in_schema=False)
async def order(request: Request, server: ServerDep, order_id: str) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = _verify(server, urls, body, url, request)
        if not verified.is_post_as_get:
            raise malformed("read an order with POST-as-GET (an empty payload)")
        return _order_response(server, urls, server.orders.get_order(account, order_id))

    return await _signed(request, server, handle)


@router.post("/order/{order_id}/finalize", include_in_schema=False)
async def finalize(request: Request, server: ServerDep, order_id: str) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = _verify(server, urls, body, url, request)
        return _order_response(server, urls, server.orders.finalize(account, order_id, verified.payload(), address))

    return await _signed(request, server, handle)


@router.post("/authz/{authz_id}", include_in_schema=False)
async def authorization(request: Request, server: ServerDep, authz_id: str) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = _verify(server, urls, body, url, request)
        deactivate = False
        if not verified.is_post_as_get:
            if verified.payload().get("status") != "deactivated":
                raise malformed("an authorization's status can only be set to 'deactivated'")
            deactivate = True
        authz, challenges = server.authorizations.get(account, authz_id, deactivate)
        extra = {"Retry-After": RETRY_AFTER} if authz.status == "pending" else {}
        return _json(server, urls, server.authorizations.render(authz, challenges, urls), headers=extra)

    return await _signed(request, server, handle)


@router.post("/chall/{challenge_id}", include_in_schema=False)
async def challenge(request: Request, server: ServerDep, challenge_id: str) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = _verify(server, urls, body, url, request)
        if verified.is_post_as_get:
            found, authz_id = server.authorizations.get_challenge(account, challenge_id)
        else:
            verified.payload()  # "{}": the client is ready
            found, authz_id = server.authorizations.respond(account, challenge_id, address)
        extra = {"Retry-After": RETRY_AFTER} if found.status == "processing" else {}
        up = f'<{urls.authorization(authz_id)}>;rel="up"'
        response = _json(server, urls, server.authorizations.render_challenge(found, urls), headers=extra)
        response.headers.append("Link", up)
        return response

    return await _signed(request, server, handle)


# --- certificates -------------------------------------------------------------------------------------------------


@router.post("/cert/{serial}", include_in_schema=False)
async def certificate(request: Request, server: ServerDep, serial: str) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = _verify(server, urls, body, url, request)
        if not verified.is_post_as_get:
            raise malformed("download a certificate with POST-as-GET (an empty payload)")
        server.orders.check_owner(account, serial)
        stored = server.authority.get_certificate(serial, caller=LocalCaller("acme"))
        pem = b"".join(c.public_bytes(Encoding.PEM) for c in [stored.certificate, *server.authority.chain])
        return Response(pem, media_type=PEM_CHAIN, headers=_headers(server, urls))

    return await _signed(request, server, handle)


@router.post("/revoke-cert", include_in_schema=False)
async def revoke_cert(request: Request, server: ServerDep) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        message = jws.parse_jws(body)
        if "jwk" in message.protected:  # signed by the certificate's own key
            verified = jws.verify_request(body, url=url, nonces=server.nonces, allow_jwk=True, lookup_kid=lambda k: {})
            account = None
        else:
            verified, account = _verify(server, urls, body, url, request)
        payload = verified.payload()
        der = jws.b64decode(payload.get("certificate"), "certificate")
        try:
            submitted = x509.load_der_x509_certificate(der)
        except ValueError:
            raise malformed("certificate is not a DER X.509 certificate") from None
        reason = payload.get("reason", 0)
        if not isinstance(reason, int) or isinstance(reason, bool) or reason not in REASON_CODES:
            raise AcmeProblem("badRevocationReason", f"reason {reason!r} is not allowed; use 0-5, 9 or 10")
        serial = format_serial(submitted.serial_number)
        try:
            stored = server.authority.get_certificate(serial, caller=LocalCaller("acme"))
        except ServiceError:
            raise AcmeProblem("malformed", "this certificate was not issued by this server", status=404) from None
        if stored.certificate != submitted:
            raise AcmeProblem("malformed", "this certificate was not issued by this server", status=404)
        if account is not None:
            server.orders.check_may_revoke(account, serial, _identifiers(submitted))
            caller = account.caller(address)
        else:
            spki = submitted.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            if verified.key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) != spki:
                raise unauthorized("the JWS key is not the certificate's key")
            caller = AcmeCaller("certkey:" + jws.thumbprint(verified.jwk or {})[:24], address=address)
        if stored.status == "revoked":
            raise AcmeProblem("alreadyRevoked", f"certificate {serial} is already revoked")
        server.nonces.spend_now()  # the authority's own transaction revokes: the nonce goes first
        server.authority.revoke(serial, reason=REASON_CODES[reason], caller=caller)
        return Response(status_code=200, headers=_headers(server, urls))

    return await _signed(request, server, handle)


def _identifiers(certificate: x509.Certificate) -> list[tuple[str, str]]:
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [("dns", str(v)) for v in sans.get_values_for_type(x509.DNSName)]
    names += [("ip", str(v)) for v in sans.get_values_for_type(x509.IPAddress)]
    others = len(sans) - len(names)
    return names if not others else []  # a name no ACME authorization covers: only the orderer may revoke


# --- renewal information (RFC 9773) ---------------------------------------------------------------------------------


@router.get("/renewal-info/{cert_id}", summary="ACME renewal information (RFC 9773)")
async def renewal_info(request: Request, server: ServerDep, cert_id: str) -> Response:
    urls = _urls(request)
    try:
        window, retry = await run_in_threadpool(renewal_window, server.authority, cert_id)
    except AcmeProblem as exc:
        return problem_response(exc)
    return JSONResponse(
        {"suggestedWindow": window}, headers={"Retry-After": str(retry), "Link": f'<{urls.directory}>;rel="index"'}
    )


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
