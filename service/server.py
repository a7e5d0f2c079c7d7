"""Serving: uvicorn over TLS with our protocol classes, the plain-HTTP publication socket beside it, forked
workers and their supervisor.

uvicorn (0.54) puts nothing under scope["extensions"]["tls"] (uvicorn#1118; the PRs are unmerged), so
our protocol subclasses read the verified peer certificate once per connection -- `connection_made`
runs after the handshake -- and add the ASGI TLS extension to every request's scope on that connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import multiprocessing
import os
import signal
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import uvicorn
import uvicorn.supervisors.multiprocess
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

from service import metrics
from service.datadir.layout import DataPaths
from service.errors import ConfigurationError
from service.logs import log_config
from service.publication import PublicationApp
from service.settings import Settings
from service.tls import (
    TICKET_KEYS_BYTES,
    CertificateReloader,
    build_server_context,
    share_session_tickets,
    tls_extension,
)

log = logging.getLogger("pocketca.tls")  # the name operators' log filters know

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools missing: h11 only
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

RELOAD_INTERVAL = 1.0  # seconds between looks at the server certificate's files (two stat calls)


def _uvicorn_ssl_factory(data_dir: str, config: uvicorn.Config, _default: Any) -> ssl.SSLContext:
    context = build_server_context(DataPaths(Path(data_dir)))
    config.pocketca_certificate_watch = CertificateReloader(context, DataPaths(Path(data_dir)))  # type: ignore[attr-defined]
    keys = getattr(config, "pocketca_ticket_keys", None)
    if keys is not None and not share_session_tickets(context, keys):
        log.warning("TLS session tickets stay per worker: a resumption works only on the worker that issued it")
    return context


class _PeerCertificateMixin:
    """Wraps the app for this connection so each request's scope carries the connection's TLS facts, and
    closes connections whose request head does not arrive within the header timeout (uvicorn has none: a
    client that connects and trickles bytes would otherwise hold the connection forever)."""

    app: Any
    config: uvicorn.Config
    transport: asyncio.Transport
    _head_timer: asyncio.TimerHandle | None = None

    @property
    def header_timeout(self) -> float:
        # set on the uvicorn Config by uvicorn_config(); the Config is what reaches spawned workers
        return float(getattr(self.config, "pocketca_header_timeout", 10.0))

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


def uvicorn_config(settings: Settings, *, protocol: type[asyncio.Protocol] = DEFAULT_PROTOCOL) -> uvicorn.Config:
    config = uvicorn.Config(
        "service.app:create_app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        http=protocol,
        ssl_context_factory=functools.partial(_uvicorn_ssl_factory, str(settings.data_dir.resolve())),
        log_config=log_config(settings.log_format, settings.log_level),
        access_log=False,  # our AccessLogMiddleware logs one line with the caller
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=int(settings.keepalive_timeout),
        timeout_graceful_shutdown=10,
    )
    config.pocketca_header_timeout = settings.header_timeout  # type: ignore[attr-defined]
    # one set of session ticket keys for every worker of this run, made at each start and never written anywhere;
    # the workers get them with the Config (inherited through the fork), never through the environment
    config.pocketca_ticket_keys = os.urandom(TICKET_KEYS_BYTES)  # type: ignore[attr-defined]
    return config


def _fork_workers() -> None:
    """Workers forked from this process, which has imported the app already, start in milliseconds; spawned
    (uvicorn's way), each would import FastAPI, SQLAlchemy and cryptography again, most of a second apiece on
    the start-up path (bench/SPEED.md). Forking is safe here: this process runs no thread of its
    own (bootstrap closed its database and committer before `serve`) and holds no connection a worker could
    share. uvicorn 0.54 takes its multiprocessing context from this module attribute (pinned in pyproject)."""
    import uvicorn._subprocess

    import service.app  # noqa: F401 - loaded once, here, for every worker

    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        uvicorn._subprocess.spawn = multiprocessing.get_context("fork")  # type: ignore[assignment]
        # what is loaded now lives as long as the workers: out of the cyclic collector's sight (gc docs: call
        # freeze() before fork), so its collections walk only what requests make, and the pages stay shared
        gc.freeze()


class PlainHTTP:
    """What the plain-HTTP publication socket needs in a worker."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock


class PocketServer(uvicorn.Server):
    """uvicorn's Server with a second, plain-HTTP socket for the publication app (same protocol class, limits,
    header timeout and graceful shutdown as the TLS socket; its connections are the server's connections), and
    the watcher that reloads the server certificate into the TLS context."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started:
            return
        config = self.config
        loop = asyncio.get_running_loop()
        plain: PlainHTTP | None = getattr(config, "pocketca_plain_http", None)
        if plain is not None:
            app = PublicationApp(config.loaded_app)

            def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
                protocol = config.http_protocol_class(  # type: ignore[call-arg]
                    config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=_loop
                )
                protocol.app = app  # type: ignore[attr-defined]
                return protocol

            server = await loop.create_server(create_protocol, sock=plain.sock, ssl=None, backlog=config.backlog)
            self.servers.append(server)
        reloader: CertificateReloader | None = getattr(config, "pocketca_certificate_watch", None)
        if reloader is not None:
            self._watch = loop.create_task(self._watch_certificate(reloader))

    async def _watch_certificate(self, reloader: CertificateReloader) -> None:
        while not self.should_exit:
            await asyncio.sleep(RELOAD_INTERVAL)
            reloader.check()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        watch: asyncio.Task[None] | None = getattr(self, "_watch", None)
        if watch is not None:
            watch.cancel()
        await super().shutdown(sockets=sockets)


class _WorkerProcess(uvicorn.supervisors.multiprocess.Process):
    """uvicorn's worker process, running our Server."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = PocketServer(config=self.config)
        return self._server


def bind_listener(host: str, port: int, setting: str) -> socket.socket:
    """A listening socket, bound here (before any worker starts) so a port in use stops `serve` with one line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise ConfigurationError(f"cannot listen on {_address(host, port)} ({setting}): {reason.lower()}") from None
    sock.set_inheritable(True)
    return sock


class _Supervisor(Multiprocess):
    def handle_hup(self) -> None:
        """SIGHUP goes to every worker, which reloads profiles.toml in place (uvicorn would restart them all)."""
        log.info("SIGHUP: asking %d workers to reload profiles.toml", len(self.processes))
        for process in self.processes:
            if process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGHUP)


def serve(settings: Settings) -> None:
    """Runs uvicorn over TLS, and the plain-HTTP publication listener beside it, until SIGINT/SIGTERM; workers
    are forked processes that read POCKETCA_*. SIGHUP reloads profiles.toml in every worker."""
    os.environ.update(settings.as_environment())
    # until the workers (or the supervisor) take SIGHUP over, it must not kill the service (its default action)
    signal.signal(signal.SIGHUP, lambda *_: log.info("SIGHUP while starting: profiles.toml is read at start anyway"))
    metrics_dir = metrics.fresh_multiprocess_dir()  # before any worker imports prometheus_client
    try:
        _serve(settings)
    finally:
        metrics.remove_multiprocess_dir(metrics_dir)


def _serve(settings: Settings) -> None:
    config = uvicorn_config(settings)
    tls_socket = bind_listener(settings.host, settings.port, "POCKETCA_PORT")
    if settings.http_port:
        try:
            config.pocketca_plain_http = PlainHTTP(  # type: ignore[attr-defined]
                bind_listener(settings.host, settings.http_port, "POCKETCA_HTTP_PORT")
            )
        except ConfigurationError:
            tls_socket.close()
            raise
    log.info(
        "listening on https://%s%s",
        _address(settings.host, settings.port),
        f" and http://{_address(settings.host, settings.http_port)} (publication)" if settings.http_port else "",
    )
    if settings.workers > 1:
        _fork_workers()
        # uvicorn 0.54 makes each worker's Server in multiprocess.Process (pinned in pyproject)
        uvicorn.supervisors.multiprocess.Process = _WorkerProcess  # type: ignore[misc]
        _Supervisor(config, sockets=[tls_socket]).run()
    else:
        server = PocketServer(config)
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal against the handler that was
        # there before it: make that one a no-op, so a stop is a clean exit 0 and not a kill or a traceback
        previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.run(sockets=[tls_socket])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    logging.getLogger("pocketca").info("stopped")


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
