"""Pure ASGI middleware: request limits, and the one log line per request."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.problems import problem, status_for
from service.errors import HeadersTooLargeError, PayloadTooLargeError, RequestTimeoutError, ServiceError

access_log = logging.getLogger("pocketca.access")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 64 * 1024
    max_header_bytes: int = 16 * 1024
    body_timeout: float = 10.0


class LimitsMiddleware:
    """Refuses a request head over its limit (431), a body over its limit (413: at once by Content-Length, else
    as the stream crosses it) and a body that does not arrive in time (408), before any handler reads it."""

    def __init__(self, app: ASGIApp, limits: Limits = Limits()) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.limits
        head = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
        for name, value in scope["headers"]:
            head += len(name) + len(value) + 4
            if name == b"content-length" and (not value.isdigit() or int(value) > limits.max_body_bytes):
                await _refuse(scope, receive, send, PayloadTooLargeError(_too_large(limits)))
                return
        if head > limits.max_header_bytes:
            detail = f"the request head is over {limits.max_header_bytes} bytes"
            await _refuse(scope, receive, send, HeadersTooLargeError(detail))
            return
        if scope["method"] in ("GET", "HEAD") and not _announces_body(scope["headers"]):
            await self.app(scope, receive, send)  # nothing to read or limit (most of the traffic: /whoami, /crl)
            return
        # Read the whole body here (it is small by definition), so that a body over the limit or too slow is
        # answered 413/408 by us, whoever reads it later (FastAPI turns errors inside its own body parsing into 400).
        body = bytearray()
        deadline = asyncio.get_running_loop().time() + limits.body_timeout
        while True:
            try:
                async with asyncio.timeout_at(deadline):  # no task per message, unlike wait_for
                    message = await receive()
            except TimeoutError:
                detail = f"the request body did not arrive within {limits.body_timeout:g} s"
                await _refuse(scope, receive, send, RequestTimeoutError(detail))
                return
            if message["type"] != "http.request":  # the client went away: let the app see it
                break
            body += message.get("body", b"")
            if len(body) > limits.max_body_bytes:
                await _refuse(scope, receive, send, PayloadTooLargeError(_too_large(limits)))
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _announces_body(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in headers)


def _too_large(limits: Limits) -> str:
    return f"the request body is over {limits.max_body_bytes} bytes"


async def _refuse(scope: Scope, receive: Receive, send: Send, exc: ServiceError) -> None:
    await problem(status_for(exc), exc.detail, title=exc.title)(scope, receive, send)


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
                scope.get("pocketca.method", scope["method"]),
                scope["path"],
                status,
                state.get("caller", "-"),
                client[0] if client else "-",
                (time.perf_counter() - started) * 1000,
            )
