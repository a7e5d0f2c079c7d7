"""The ASGI application. A composition root: the only API module that reads Settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import __version__
from service.api import openapi, problems
from service.api.fastpath import FastPaths
from service.api.middleware import AccessLogMiddleware, Limits, LimitsMiddleware
from service.api.proxy import ProxyConfig
from service.api.routes import audit, ca, certs, csr, health, ocsp, pkcs12, tokens, whoami
from service.authority import Authority
from service.authority.crls import CRLRefresher
from service.bootstrap import build_authority
from service.settings import Settings, get_settings

DESCRIPTION = """A small certificate authority for mutual TLS: sign CSRs, record every certificate,
revoke them, serve the CRL, and tell mTLS callers who they are. Errors are application/problem+json."""


def create_app(
    settings: Settings | None = None, *, authority: Authority | None = None, limits: Limits | None = None
) -> FastAPI:
    """Builds the app. Given an authority (tests), it is used as is; otherwise one is made at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "authority", None) is not None:
            yield
            return
        app.state.authority = build_authority(settings or get_settings())
        refresher = CRLRefresher(*app.state.authority.crl_publishers.values())
        refresher.start()
        try:
            yield
        finally:
            refresher.stop()
            app.state.authority.close()  # the last batch commits; then the connections close

    app = FastAPI(
        title="pocketca",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.authority = authority
    if settings is not None:
        app.state.proxy = ProxyConfig.parse(settings.trusted_proxies, settings.client_cert_header)
    problems.install(app)
    openapi.install(app)
    for module in (csr, certs, pkcs12, tokens, audit, ca, ocsp, whoami, health):
        app.include_router(module.router)
    if limits is None:
        limits = (
            Limits(settings.max_body_bytes, settings.max_header_bytes, settings.body_timeout) if settings else Limits()
        )
    app.add_middleware(FastPaths)  # innermost: inside the limits and the access log
    app.add_middleware(LimitsMiddleware, limits=limits)
    app.add_middleware(AccessLogMiddleware)
    return app


def create_app_from_environment() -> FastAPI:
    """The factory uvicorn workers import: settings come from POCKETCA_* (which `serve` set from its flags)."""
    return create_app(get_settings())
