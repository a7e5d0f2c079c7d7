"""Pure ASGI middleware around every request: the request id, the one access log line and the metrics (the
outermost layer); and the public origin every absolute URL is built from."""

from __future__ import annotations

import logging
import os
import re
import time
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics
from service.http.proxy import ProxyConfig
from service.logs import request_id

access_log = logging.getLogger("pocketca.access")


class PublicOriginMiddleware:
    """Every absolute URL the app builds comes from POCKETCA_PUBLIC_URL, never from the request's Host header:
    the request's scheme and Host are the public URL's before anything below reads them, so what the framework
    builds by itself (a trailing-slash redirect) is as safe as what we build (ACME's URLs)."""

    def __init__(self, app: ASGIApp, public_url: str) -> None:
        self.app = app
        parts = urlsplit(public_url)
        self.scheme = parts.scheme
        self.host = parts.netloc.rpartition("@")[2].encode("idna")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":  # in place: the outer layers read what the router puts there (the route)
            scope["scheme"] = self.scheme
            scope["headers"] = [*(h for h in scope["headers"] if h[0] != b"host"), (b"host", self.host)]
        await self.app(scope, receive, send)


class AccessLogMiddleware:
    """The outermost layer: the request id (a trusted proxy's X-Request-Id, else a new one) for every log line
    of the request and the response's X-Request-Id; one access line (method, path, status, caller -- token id or
    certificate serial, never a secret --, client, time); the request's metrics (per route template)."""

    def __init__(self, app: ASGIApp, proxy: ProxyConfig | None = None) -> None:
        self.app = app
        self.proxy = proxy or ProxyConfig()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        client = scope.get("client")
        rid = self._request_id(scope, client[0] if client else None)
        added = [(b"x-request-id", rid.encode())]
        if scope.get("scheme") == "https" and _hsts_applies(scope["headers"]):
            added.append(HSTS)
        context = request_id.set(rid)

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            state = scope.get("state") or {}
            caller = state.get("caller", "-")
            address = client[0] if client else "-"
            method, path = scope.get("pocketca.method", scope["method"]), scope["path"]  # HEAD on the plain listener
            access_log.info(
                "%s %s %d caller=%s client=%s ms=%.1f",
                method,
                path,
                status,
                caller,
                address,
                elapsed * 1000,
                extra={
                    "fields": {
                        "method": method,
                        "path": path,
                        "status": status,
                        "caller": caller,
                        "client": address,
                        "ms": round(elapsed * 1000, 1),
                    }
                },
            )
            metrics.request(_route(scope), method, status, elapsed)
            request_id.reset(context)

    def _request_id(self, scope: Scope, peer: str | None) -> str:
        if self.proxy.trusted and self.proxy.is_trusted(peer):
            for name, value in scope["headers"]:
                if name == b"x-request-id":
                    text: str = value.decode("latin-1")
                    if _REQUEST_ID.fullmatch(text):
                        return text
                    break
        return os.urandom(16).hex()


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

# Every HTTPS answer tells browsers to use HTTPS for this host for a year (no includeSubDomains: other hosts of
# the domain are not ours to decide). Not for `localhost` and IP literals: browsers ignore it for IPs (RFC 6797
# §8.1), and for localhost it would pin every port of the machine to HTTPS, other programs' included.
HSTS_MAX_AGE = 31_536_000
HSTS = (b"strict-transport-security", f"max-age={HSTS_MAX_AGE}".encode())
_IPV4 = re.compile(rb"[0-9.]+")


def _hsts_applies(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"host":
            host = value.strip().lower()
            if host.startswith(b"["):  # an IPv6 literal
                return False
            host = host.partition(b":")[0]  # without the port
            return not (host == b"localhost" or host.endswith(b".localhost") or _IPV4.fullmatch(host))
    return False


def _route(scope: Scope) -> str:
    """The route's template (/certs/{serial}), never the raw path: a bounded label."""
    route = scope.get("route")
    return "unmatched" if route is None else str(getattr(route, "path", "unmatched"))
