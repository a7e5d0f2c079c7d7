"""The plain-HTTP publication listener: only the signed objects (CRL, OCSP, the CA certificate).

Relying parties fetch CRLs and OCSP over plain HTTP (RFC 5280 4.2.1.13, RFC 6960 appendix A): the objects are
signed, and fetching them over TLS signed by the same CA would be circular. This app is not a second copy of
those routes: it lets through, to the very app that serves HTTPS (same handlers, caching headers, limits,
access log, authority), only the requests for the published objects, and answers everything else 404. So
no token or key ever travels over it, and no other route is reachable without TLS.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.access import AccessLogMiddleware
from service.http.problems import problem

# (methods, path): the published objects; `/crl/{issuer id}` and `/ca.crt/{issuer id}` are each issuer's
PUBLISHED: tuple[tuple[frozenset[str], re.Pattern[str]], ...] = (
    (frozenset({"GET", "HEAD"}), re.compile(r"/(crl|crl\.pem|ca\.crt|ca|crl/[A-Za-z0-9_.-]+|ca\.crt/[A-Za-z0-9_.-]+)")),
    (frozenset({"POST"}), re.compile(r"/ocsp")),
    (frozenset({"GET", "HEAD"}), re.compile(r"/ocsp/.+", re.DOTALL)),
)


def is_published(method: str, path: str) -> bool:
    return any(method in methods and pattern.fullmatch(path) for methods, pattern in PUBLISHED)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    detail = (
        "the plain-HTTP listener serves only /crl, /crl.pem, /ca.crt, /ca (and their per-issuer forms) and /ocsp;"
        " use HTTPS for the API"
    )
    await problem(404, detail)(scope, receive, send)


class PublicationApp:
    """Wraps the API app for the plain-HTTP listener. HEAD is answered as GET without the body (the same
    headers, Content-Length included), whatever the route below declares."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.not_found = AccessLogMiddleware(_not_found)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the HTTPS server runs the app's lifespan; nothing to do here twice
            return
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        method, path = scope["method"], scope["path"]
        if not is_published(method, path):
            await self.not_found(scope, receive, send)
            return
        scope = dict(scope)
        scope.pop("extensions", None)  # no TLS facts on this listener, whatever a protocol put there
        if method != "HEAD":
            await self.app(scope, receive, send)
            return
        scope["method"] = "GET"
        scope["pocketca.method"] = "HEAD"  # what the access log names

        async def send_head(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app(scope, receive, send_head)
