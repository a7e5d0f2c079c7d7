"""The adapter over uvicorn's names that are not its public API (its public API is `Config` and `Server.run`/
`serve`). Everything below is read from uvicorn 0.55; tests/serving/test_upstream.py fails, naming the version,
when an upgrade changes one of them. Why each is needed (no public way exists):

- the HTTP protocol classes, subclassed (service.serving.protocols): uvicorn puts nothing under
  scope["extensions"]["tls"] (uvicorn#1118) and has no timeout for a request head; what is written within one
  turn of the loop leaves as one TLS record. Hooks used: `connection_made`, `connection_lost`, the `app` and
  `transport` attributes, httptools' `on_message_begin` and `on_headers_complete`.
- a second, plain-HTTP listener served by the same `Server` (same protocol class, limits, state and graceful
  shutdown, so its connections are the server's): `Server.startup`/`shutdown`, `servers`, `server_state`,
  `lifespan.state`, `Config.http_protocol_class`, `Config.backlog`, and the protocol's constructor keywords.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools missing: h11 only
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

UVICORN = "0.55"  # the version the names here were read from (pyproject pins uvicorn to it)

__all__ = ["UVICORN", "H11Protocol", "HttpToolsProtocol", "serve_plain"]


async def serve_plain(server: uvicorn.Server, sock: socket.socket, app: Any) -> None:
    """Serves `app` over plain HTTP on `sock` from a started `server`, as the server serves its own app."""
    config = server.config
    loop = asyncio.get_running_loop()

    def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
        protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=server.server_state, app_state=server.lifespan.state, _loop=_loop
        )
        protocol.app = app  # type: ignore[attr-defined]
        return protocol

    listener = await loop.create_server(create_protocol, sock=sock, ssl=None, backlog=config.backlog)
    server.servers.append(listener)
