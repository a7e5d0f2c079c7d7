"""The ACME order routes (RFC 8555 §7.4, §7.5): new-order, an order, finalize, authorizations, challenges."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service.acme.exchange import ServerDep, json_answer, signed, verify_account
from service.acme.server import AcmeServer
from service.authority.acme.orders import RETRY_AFTER, Order
from service.authority.acme.problems import malformed
from service.authority.acme.urls import Urls

router = APIRouter()  # included under /acme by service.acme.routes


def _order_response(server: AcmeServer, urls: Urls, order: Order, status: int = 200) -> JSONResponse:
    """An order with its Location; Retry-After while the client should poll it (pending or processing)."""
    headers = {"Location": urls.order(order.id)}
    if status == 200 and order.status in ("pending", "processing"):
        headers["Retry-After"] = RETRY_AFTER
    return json_answer(server, urls, server.orders.render_order(order, urls), status, headers=headers)


@router.post("/new-order", include_in_schema=False)
async def new_order(request: Request, server: ServerDep) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = verify_account(server, urls, body, url, request)
        return _order_response(server, urls, server.orders.new_order(account, verified.payload(), address), 201)

    return await signed(request, server, handle)


@router.post("/order/{order_id}", include_in_schema=False)
async def order(request: Request, server: ServerDep, order_id: str) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = verify_account(server, urls, body, url, request)
        if not verified.is_post_as_get:
            raise malformed("read an order with POST-as-GET (an empty payload)")
        return _order_response(server, urls, server.orders.get_order(account, order_id))

    return await signed(request, server, handle)


@router.post("/order/{order_id}/finalize", include_in_schema=False)
async def finalize(request: Request, server: ServerDep, order_id: str) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = verify_account(server, urls, body, url, request)
        return _order_response(server, urls, server.orders.finalize(account, order_id, verified.payload(), address))

    return await signed(request, server, handle)


@router.post("/authz/{authz_id}", include_in_schema=False)
async def authorization(request: Request, server: ServerDep, authz_id: str) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = verify_account(server, urls, body, url, request)
        deactivate = False
        if not verified.is_post_as_get:
            if verified.payload().get("status") != "deactivated":
                raise malformed("an authorization's status can only be set to 'deactivated'")
            deactivate = True
        authz, challenges = server.authorizations.get(account, authz_id, deactivate)
        extra = {"Retry-After": RETRY_AFTER} if authz.status == "pending" else {}
        return json_answer(server, urls, server.authorizations.render(authz, challenges, urls), headers=extra)

    return await signed(request, server, handle)


@router.post("/chall/{challenge_id}", include_in_schema=False)
async def challenge(request: Request, server: ServerDep, challenge_id: str) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = verify_account(server, urls, body, url, request)
        if verified.is_post_as_get:
            found, authz_id = server.authorizations.get_challenge(account, challenge_id)
        else:
            verified.payload()  # "{}": the client is ready
            found, authz_id = server.authorizations.respond(account, challenge_id, address)
        extra = {"Retry-After": RETRY_AFTER} if found.status == "processing" else {}
        up = f'<{urls.authorization(authz_id)}>;rel="up"'
        response = json_answer(server, urls, server.authorizations.render_challenge(found, urls), headers=extra)
        response.headers.append("Link", up)
        return response

    return await signed(request, server, handle)
