"""The adapter over uvicorn's names that are not its public API (its public API is `Config` and `Server.run`/
`serve`). Everything below is read from uvicorn 0.55; tests/serving/test_upstream.py fails, naming the version,
when an upgrade changes one of them. Why each is needed (no public way exists):

- the HTTP protocol classes, subclassed (service.serving.protocols): uvicorn puts nothing under
  scope["extensions"]["tls"] (uvicorn#1118) and has no timeout for a request head; what is written within one
  turn of the loop leaves as one TLS record. Hooks used: `connection_made`, `connection_lost`, the `app` and
  `transport` attributes, httptools' `on_message_begin` and `on_headers_complete`.
- a second, plain-HTTP listener served by the same `Server` (same protocol class, limits, state and graceful
  shutdown, so its connections are the server's), and a task that runs while the server does (`ServerWithPlain`):
  `Server.startup`/`shutdown` overridden, `started`, `should_exit`, `servers`, `server_state`, `lifespan.state`,
  `Config.loaded_app`, `Config.http_protocol_class`, `Config.backlog`, and the protocol's constructor keywords.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools missing: h11 only
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

UVICORN = "0.55"  # the version the names here were read from (pyproject pins uvicorn to it)

__all__ = ["UVICORN", "H11Protocol", "HttpToolsProtocol", "ServerWithPlain"]


class ServerWithPlain(uvicorn.Server):
    """uvicorn's Server that also serves `plain_app(the loaded app)` over plain HTTP on `plain`, and runs
    `alongside(should_exit)` while it serves (cancelled at shutdown)."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        plain: socket.socket | None,
        plain_app: Callable[[Any], Any],
        alongside: Callable[[Callable[[], bool]], Coroutine[Any, Any, None]] | None,
    ) -> None:
        super().__init__(config)
        self.plain, self.plain_app, self.alongside = plain, plain_app, alongside
        self.task: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started:
            return
        if self.plain is not None:
            await self._serve_plain(self.plain, self.plain_app(self.config.loaded_app))
        if self.alongside is not None:
            self.task = asyncio.get_running_loop().create_task(self.alongside(lambda: self.should_exit))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.task is not None:
            self.task.cancel()
        await super().shutdown(sockets=sockets)

    async def _serve_plain(self, sock: socket.socket, app: Any) -> None:
        config = self.config
        loop = asyncio.get_running_loop()

        def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
            protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=_loop
            )
            protocol.app = app  # type: ignore[attr-defined]
            return protocol

        listener = await loop.create_server(create_protocol, sock=sock, ssl=None, backlog=config.backlog)
        self.servers.append(listener)
