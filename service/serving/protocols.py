"""What each connection adds to uvicorn's HTTP protocols (their classes reached through service.serving.upstream):
the ASGI TLS extension on every request's scope, a timeout for the request head, and one write per turn of the
event loop. `connection_made` runs after the TLS handshake, so the verified peer certificate is read once per
connection."""

from __future__ import annotations

import asyncio
from typing import Any

from service.serving.contexts import tls_extension
from service.serving.upstream import H11Protocol, HttpToolsProtocol


class _PeerCertificateMixin:
    """Wraps the app for this connection so each request's scope carries the connection's TLS facts, and
    closes connections whose request head does not arrive within the header timeout (uvicorn has none: a
    client that connects and trickles bytes would otherwise hold the connection forever)."""

    app: Any
    transport: asyncio.Transport
    header_timeout: float = 10.0  # set by protocol_class()
    _head_timer: asyncio.TimerHandle | None = None

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        loop = asyncio.get_running_loop()
        self._head_timer = loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)  # type: ignore[misc]

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self.transport = _CoalescingTransport(transport)  # type: ignore[assignment]
        self._arm_head_timer()  # until the first request head is in
        tls = tls_extension(transport.get_extra_info("ssl_object"))
        if tls is None:
            return
        app = self.app

        async def app_with_tls(scope: Any, receive: Any, send: Any) -> None:
            scope["extensions"] = {**(scope.get("extensions") or {}), "tls": tls}
            await app(scope, receive, send)

        self.app = app_with_tls


class _CoalescingTransport:
    """What is written within one turn of the event loop goes out in one write: a response's head and body (two
    ASGI messages, two writes in uvicorn) become one TLS record and one send() instead of two each."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data, self._pending = b"".join(self._pending), []
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()  # what was written goes out before the close
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's own
        return getattr(self._transport, name)


class TLSH11Protocol(_PeerCertificateMixin, H11Protocol):  # type: ignore[misc]
    pass


if HttpToolsProtocol is not None:

    class TLSHttpToolsProtocol(_PeerCertificateMixin, HttpToolsProtocol):  # type: ignore[misc]
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm_head_timer()

        def on_headers_complete(self) -> None:
            self._disarm_head_timer()
            super().on_headers_complete()

    DEFAULT_PROTOCOL: type[asyncio.Protocol] = TLSHttpToolsProtocol
else:  # pragma: no cover
    DEFAULT_PROTOCOL = TLSH11Protocol


def protocol_class(header_timeout: float, base: type[asyncio.Protocol] = DEFAULT_PROTOCOL) -> type[asyncio.Protocol]:
    """`base` with this run's header timeout: a value of the class, which forked workers inherit."""
    return type(base.__name__, (base,), {"header_timeout": header_timeout})
