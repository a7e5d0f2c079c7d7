"""`serve`: uvicorn over TLS and the plain-HTTP publication listener beside it, in this process or in forked
workers, until SIGINT/SIGTERM. Settings are read here, once, and handed on as values: the workers inherit them
with the Config (through the fork), never through the environment."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import ssl

import uvicorn

from service import metrics
from service.datadir.layout import DataPaths
from service.logs import log_config
from service.serving.contexts import build_server_context
from service.serving.listeners import Listeners, address
from service.serving.protocols import DEFAULT_PROTOCOL, protocol_class
from service.serving.publication import PublicationApp
from service.serving.reloaders import CertificateReloader
from service.serving.upstream import ServerWithPlain
from service.serving.workers import Supervisor, can_fork
from service.settings import Settings

log = logging.getLogger("pocketca.tls")  # the name operators' log filters know


def uvicorn_config(
    settings: Settings, context: ssl.SSLContext, *, protocol: type[asyncio.Protocol] = DEFAULT_PROTOCOL
) -> uvicorn.Config:
    from service.app import create_app

    return uvicorn.Config(
        functools.partial(create_app, settings),
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        http=protocol_class(settings.header_timeout, protocol),
        ssl_context_factory=lambda _config, _default: context,
        log_config=log_config(settings.log_format, settings.log_level),
        access_log=False,  # our AccessLogMiddleware logs one line with the caller
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=int(settings.keepalive_timeout),
        timeout_graceful_shutdown=10,
    )


def serve(settings: Settings, listeners: Listeners) -> None:
    """Serves on `listeners` (bound by `listeners.bind`) until SIGINT/SIGTERM. SIGHUP reloads profiles.toml in
    every worker."""
    # until the workers (or the supervisor) take SIGHUP over, it must not kill the service (its default action)
    signal.signal(signal.SIGHUP, lambda *_: log.info("SIGHUP while starting: profiles.toml is read at start anyway"))
    metrics_dir = metrics.fresh_multiprocess_dir()  # before any worker imports prometheus_client
    try:
        _serve(settings, listeners)
    finally:
        metrics.remove_multiprocess_dir(metrics_dir)


def _serve(settings: Settings, listeners: Listeners) -> None:
    paths = DataPaths(settings.data_dir.resolve())
    context = build_server_context(paths)  # one for all workers: they share its session-ticket keys
    config = uvicorn_config(settings, context)
    reloader = CertificateReloader(context, paths)
    publication = f" and http://{address(settings.host, settings.http_port)} (publication)" if listeners.plain else ""
    log.info("listening on https://%s%s", address(settings.host, settings.port), publication)

    def run() -> None:
        # the publication app beside the API, on the same server; the certificate watched while it serves
        server = ServerWithPlain(config, plain=listeners.plain, plain_app=PublicationApp, alongside=reloader.watch)
        server.run(sockets=[listeners.tls])

    if settings.workers > 1 and can_fork():  # the app's modules are loaded already (uvicorn_config): once for all
        Supervisor(run, settings.workers).run()
    else:
        if settings.workers > 1:
            log.warning("workers are forked, and this process cannot fork safely: serving in one process")
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal against the handler that was
        # there before it: make that one a no-op, so a stop is a clean exit 0 and not a kill or a traceback
        previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    logging.getLogger("pocketca").info("stopped")
