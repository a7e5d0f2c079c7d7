"""How the ACME front door reads a request and answers it: the ACME server of this worker, the URLs, the headers
every answer carries (Replay-Nonce, Link), a JWS-signed request run in a thread with every refusal an
`urn:ietf:params:acme:error:*` problem document."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service.acme.problems import problem_response
from service.acme.server import AcmeServer
from service.authority import Authority
from service.authority.acme import jws
from service.authority.acme.accounts import Account
from service.authority.acme.nonces import DatabaseError
from service.authority.acme.problems import AcmeProblem, from_service_error
from service.authority.acme.urls import Urls
from service.errors import ServiceError
from service.http.proxy import client_address  # X-Forwarded-For's last hop from a trusted proxy

log = logging.getLogger("pocketca.acme")
JOSE_JSON = "application/jose+json"


async def get_server(request: Request) -> AcmeServer:
    """`async def`: FastAPI runs a plain `def` dependency in a worker thread, a hop that costs more than this."""
    return server_for(request.app.state)


def server_for(state: Any) -> AcmeServer:
    if state.acme is None or state.acme.authority is not state.authority:
        state.acme = AcmeServer(state.authority, state.acme_config)
    server: AcmeServer = state.acme
    return server


ServerDep = Annotated[AcmeServer, Depends(get_server)]


def urls_for(request: Request) -> Urls:
    """From POCKETCA_PUBLIC_URL, never from the Host header (a directory with another host is cached)."""
    authority: Authority = request.app.state.authority
    return Urls(authority.public_url)


def acme_headers(server: AcmeServer, urls: Urls, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {
        "Replay-Nonce": server.nonces.issue(),
        "Link": f'<{urls.directory}>;rel="index"',
        "Cache-Control": "no-store",
    }
    headers.update(extra or {})
    return headers


def problem_answer(server: AcmeServer, urls: Urls, exc: AcmeProblem) -> JSONResponse:
    response = problem_response(exc)
    try:
        response.headers.update(acme_headers(server, urls))  # badNonce needs a fresh one; every answer gets one
    except Exception:  # the database is down: the problem still goes out
        log.exception("no nonce for a problem response")
    response.headers.update(exc.headers)
    return response


Handler = Callable[[AcmeServer, Urls, bytes, str, str | None], Response]


async def signed(request: Request, server: AcmeServer, handler: Handler) -> Response:
    """Reads the body, then runs the (blocking) handler in a thread; maps every error to an ACME problem."""
    urls = urls_for(request)
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
            return problem_answer(server, urls, exc)
        except ServiceError as exc:
            return problem_answer(server, urls, from_service_error(exc))
        except DatabaseError:
            log.exception("ACME %s: the database failed", request.url.path)
            unavailable = AcmeProblem("serverInternal", "the database is not usable; retry later", status=503)
            unavailable.headers["Retry-After"] = "5"
            return problem_response(unavailable)  # no nonce: that would need the database
        except Exception:
            log.exception("ACME %s failed", request.url.path)
            return problem_answer(
                server, urls, AcmeProblem("serverInternal", "the server failed; it has been logged", status=500)
            )

    return await run_in_threadpool(run)


def verify_account(
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


def json_answer(
    server: AcmeServer, urls: Urls, body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=acme_headers(server, urls, headers))
