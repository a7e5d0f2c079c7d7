"""The ACME account routes (RFC 8555 §7.3): new-account, an account, its orders, key-change."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service.acme.exchange import ServerDep, json_answer, signed, verify_account
from service.acme.server import AcmeServer
from service.authority.acme import jws
from service.authority.acme.accounts import render
from service.authority.acme.problems import unauthorized
from service.authority.acme.urls import Urls

router = APIRouter()  # included under /acme by service.acme.routes


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
        return json_answer(
            server, urls, render(account, urls), 201 if created else 200, headers={"Location": urls.account(account.id)}
        )

    return await signed(request, server, handle)


@router.post("/account/{account_id}", include_in_schema=False)
async def account(request: Request, server: ServerDep, account_id: str) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = verify_account(server, urls, body, url, request)
        if account.id != account_id:
            raise unauthorized("an account may only read and change itself")
        updated = server.accounts.update(account, verified, address)
        return json_answer(server, urls, render(updated, urls), headers={"Location": urls.account(updated.id)})

    return await signed(request, server, handle)


@router.post("/account/{account_id}/orders", include_in_schema=False)
async def account_orders(request: Request, server: ServerDep, account_id: str) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = verify_account(server, urls, body, url, request)
        if account.id != account_id or not verified.is_post_as_get:
            raise unauthorized("an account may only list its own orders, with POST-as-GET")
        return json_answer(server, urls, {"orders": [urls.order(o) for o in server.orders.list_orders(account)]})

    return await signed(request, server, handle)


@router.post("/key-change", include_in_schema=False)
async def key_change(request: Request, server: ServerDep) -> Response:
    def handle(server: AcmeServer, urls: Urls, body: bytes, url: str, address: str | None) -> Response:
        verified, account = verify_account(server, urls, body, url, request)
        if verified.kid != urls.account(account.id):
            raise unauthorized("keyChange must be signed with the account's kid")
        updated = server.accounts.change_key(account, verified, urls, address)
        return json_answer(server, urls, render(updated, urls), headers={"Location": urls.account(updated.id)})

    return await signed(request, server, handle)
