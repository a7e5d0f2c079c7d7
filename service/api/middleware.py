"""Pure ASGI middleware: the body-size limit and the one log line per request."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.problems import problem
from service.errors import PayloadTooLargeError

MAX_BODY_BYTES = 64 * 1024
access_log = logging.getLogger("pocketca.access")


class BodyLimitMiddleware:
    """Refuses bodies over the limit: at once by Content-Length, else as the stream crosses it."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await _too_large(scope, receive, send, self.max_bytes)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLargeError(f"the request body is over {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = problem(413, f"the request body is over {limit} bytes", title="Payload too large")
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


class AccessLogMiddleware:
    """method, path, status, caller (token id or certificate serial, never a secret), client, time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            state = scope.get("state") or {}
            client = scope.get("client")
            access_log.info(
                "%s %s %d caller=%s client=%s ms=%.1f",
                scope["method"],
                scope["path"],
                status,
                state.get("caller", "-"),
                client[0] if client else "-",
                (time.perf_counter() - started) * 1000,
            )
