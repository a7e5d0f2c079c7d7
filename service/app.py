"""The ASGI application: the composition root, the one module that imports every front door (api, acme, web)
and builds the app from them, over what they share (service.http). It reads Settings."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from cryptography import x509
from fastapi import FastAPI

from service import __version__, metrics
from service.acme import routes as acme
from service.acme.server import AcmeConfig
from service.api import openapi
from service.api.routes import audit, ca, certs, csr, health, ocsp, pkcs12, tokens, whoami
from service.authority import Authority
from service.authority.acme.challenges import ValidationConfig, parse_resolver
from service.authority.acme.limits import RateLimits
from service.authority.acme.urls import PREFIX as ACME_PREFIX
from service.authority.crls import CRLRefresher
from service.ca.identifiers import IdentifierPolicy
from service.datadir.build import build_authority
from service.datadir.layout import DataPaths
from service.datadir.profiles import load_profiles
from service.datadir.server_cert import ServerCertificateKeeper
from service.errors import ConfigurationError
from service.http import lean, problems
from service.http.access import AccessLogMiddleware, PublicOriginMiddleware
from service.http.limits import Limits, LimitsMiddleware
from service.http.proxy import ProxyConfig
from service.settings import Settings, get_settings
from service.web import admin, certificates, console, pages
from service.web import whoami as whoami_page

DESCRIPTION = """A small certificate authority for mutual TLS: sign CSRs, record every certificate,
revoke them, serve the CRL, and tell mTLS callers who they are. Errors are application/problem+json."""
log = logging.getLogger("pocketca.app")


def create_app(
    settings: Settings | None = None, *, authority: Authority | None = None, limits: Limits | None = None
) -> FastAPI:
    """Builds the app. Given an authority (tests), it is used as is; otherwise one is made at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "authority", None) is not None:
            yield
            return
        resolved = settings or get_settings()
        app.state.authority = build_authority(resolved)
        refresher = CRLRefresher(*app.state.authority.crl_publishers.values())
        refresher.start()
        loop = asyncio.get_running_loop()
        paths = DataPaths(resolved.data_dir)
        loop.add_signal_handler(signal.SIGHUP, reload_profiles, app.state.authority, paths)
        keeper = ServerCertificateKeeper(app.state.authority, paths, resolved.server_names)
        keeper.start()
        app.state.authority.failures.start()  # writes each ended window of failed authentication (stopped by close)
        try:
            yield
        finally:
            keeper.stop()
            loop.remove_signal_handler(signal.SIGHUP)
            refresher.stop()
            if app.state.acme is not None:
                app.state.acme.close()
            app.state.authority.close()  # the last batch commits; then the connections close

    app = FastAPI(
        title="pocketca",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=openapi.operation_id,
        # no OpenTelemetry: metrics are Prometheus' (/metrics); FastAPI's check for a configured provider costs
        # several µs on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.authority = authority
    metrics.enable()
    proxy = ProxyConfig()
    if settings is not None:
        proxy = app.state.proxy = ProxyConfig.parse(settings.trusted_proxies, settings.client_cert_header)
    problems.install(app)
    openapi.install(app)
    # the hot routes on the app's own router, first (http.lean); the /whoami page (Accept: text/html only) before
    # the JSON route
    lean.install(app, csr.router, whoami_page.router, whoami.router, acme.nonce_router)
    for module in (certs, pkcs12, tokens, audit, ca, ocsp, health):
        app.include_router(module.router)
    for module in (console, certificates, admin):  # the web console at /ui/
        app.include_router(module.router)
    acme.install(app, acme_config(settings or get_settings()))
    if limits is None:
        limits = (
            Limits(settings.max_body_bytes, settings.max_header_bytes, settings.body_timeout) if settings else Limits()
        )
    public_url = settings.public_url if settings else authority.public_url if authority else get_settings().public_url
    app.add_middleware(PublicOriginMiddleware, public_url=public_url)  # below the hot routes: they build no URL
    app.add_middleware(lean.LeanDispatch)  # inside the limits and the access log
    app.add_middleware(LimitsMiddleware, limits=limits, refusals=REFUSALS)
    app.add_middleware(AccessLogMiddleware, proxy=proxy)
    return app


# a refusal at the edge (service.http.limits) in the words of the front door that owns the path
REFUSALS = [(ACME_PREFIX + "/", acme.edge_refusal), ("/ui/", pages.edge_refusal)]


def reload_profiles(authority: Authority, paths: DataPaths) -> None:
    """SIGHUP: profiles.toml again, in this worker; a file that does not parse leaves the profiles in use."""
    try:
        profiles = load_profiles(paths)
    except ConfigurationError as exc:
        log.error("SIGHUP: profiles.toml not reloaded, the profiles in use stay: %s", exc)
        return
    authority.reload_profiles(profiles)
    log.info("SIGHUP: reloaded %s: %s", paths.profiles, ", ".join(sorted(profiles)))


def acme_config(settings: Settings) -> AcmeConfig:
    return AcmeConfig(
        default_profile=settings.acme_profile,
        eab_required=settings.acme_eab_required,
        validation=ValidationConfig(
            http_port=settings.acme_http_port,
            tls_port=settings.acme_tls_port,
            resolver=parse_resolver(settings.acme_dns_resolver),
            policy=IdentifierPolicy.build(settings.acme_allow, settings.acme_deny, own_names(settings)),
        ),
        limits=RateLimits(
            accounts_per_address=settings.acme_accounts_per_address,
            orders_per_account=settings.acme_orders_per_account,
            orders_per_address=settings.acme_orders_per_address,
        ),
    )


def own_names(settings: Settings) -> list[str]:
    """The service's own names and addresses, never orderable over ACME nor dialed by its validator: its
    certificate's names (as configured, and as the certificate in the data dir carries them), the host of its
    public URL, and the address it listens on."""
    names = [*settings.server_names, urlsplit(settings.public_url).hostname or "", settings.host]
    try:
        certificate = x509.load_pem_x509_certificate(DataPaths(settings.data_dir).server_cert.read_bytes())
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += [str(name) for name in sans.get_values_for_type(x509.DNSName)]
        names += [str(address) for address in sans.get_values_for_type(x509.IPAddress)]
    except (OSError, ValueError, x509.ExtensionNotFound):
        pass  # not made yet (it will be, for the names configured)
    return names


def create_app_from_environment() -> FastAPI:
    """The factory uvicorn workers import: settings come from POCKETCA_* (which `serve` set from its flags)."""
    return create_app(get_settings())
