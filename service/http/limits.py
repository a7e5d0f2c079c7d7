"""Pure ASGI middleware: the limits every request meets before a handler reads it, and the refusal a front door
words in its own language."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import (
    HeadersTooLargeError,
    InvalidRequestError,
    JSONTooDeepError,
    PayloadTooLargeError,
    RequestTimeoutError,
    ServiceError,
)
from service.http.problems import problem, slug_for, status_for
from service.inputs import MAX_JSON_DEPTH, json_too_deep


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 64 * 1024
    max_header_bytes: int = 16 * 1024
    body_timeout: float = 10.0


# How a front door words a refusal made here: (path prefix, renderer); the ACME server answers ACME documents.
Refusal = Callable[[ServiceError, int, Scope], Response]
Refusals = Sequence[tuple[str, Refusal]]


class LimitsMiddleware:
    """Refuses a request head over its limit (431), a body over its limit (413: at once by Content-Length, else
    as the stream crosses it) and a body that does not arrive in time (408), before any handler reads it; and,
    at this one edge for every route, input no handler could use (400): a NUL in the path or the query (no name,
    id or filter holds one; PostgreSQL cannot store one) and a JSON body nested deeper than MAX_JSON_DEPTH."""

    def __init__(self, app: ASGIApp, limits: Limits = Limits(), refusals: Refusals = ()) -> None:
        self.app = app
        self.limits = limits
        self.refusals = tuple(refusals)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.limits
        refuse = self._refuse
        head = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
        json_body = True  # no Content-Type: FastAPI reads the body as JSON
        for name, value in scope["headers"]:
            head += len(name) + len(value) + 4
            if name == b"content-length" and (not value.isdigit() or int(value) > limits.max_body_bytes):
                await refuse(scope, receive, send, PayloadTooLargeError(limits.max_body_bytes))
                return
            if name == b"content-type":
                json_body = _is_json(value)
        if head > limits.max_header_bytes:
            await refuse(scope, receive, send, HeadersTooLargeError(limits.max_header_bytes))
            return
        path = scope["path"]
        # an OCSP GET path is base64 of DER: whatever it holds, its client reads only an OCSP answer
        # (malformedRequest), never a problem document; nothing stores it
        if ("\x00" in path and not path.startswith("/ocsp/")) or b"%00" in scope.get("query_string", b""):
            await refuse(scope, receive, send, InvalidRequestError(_NUL))
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
                await refuse(scope, receive, send, RequestTimeoutError(limits.body_timeout))
                return
            if message["type"] != "http.request":  # the client went away: let the app see it
                break
            body += message.get("body", b"")
            if len(body) > limits.max_body_bytes:
                await refuse(scope, receive, send, PayloadTooLargeError(limits.max_body_bytes))
                return
            if not message.get("more_body", False):
                break
        if json_body and json_too_deep(bytes(body)):
            await refuse(scope, receive, send, JSONTooDeepError(MAX_JSON_DEPTH))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: ServiceError) -> None:
        status = status_for(exc)
        path = scope["path"]
        for prefix, render in self.refusals:
            if path.startswith(prefix):
                response = render(exc, status, scope)
                break
        else:
            response = problem(status, exc.detail, title=exc.title, slug=slug_for(exc))
        if status in (408, 413, 431):
            response.headers["Connection"] = "close"  # the rest of this request may still be on the wire
        await response(scope, receive, send)


_NUL = "a NUL character (%00) is never part of a path or a query here"


def _is_json(content_type: bytes) -> bool:
    media_type = content_type.partition(b";")[0].strip().lower()
    return media_type == b"application/json" or media_type.endswith(b"+json")


def _announces_body(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in headers)
