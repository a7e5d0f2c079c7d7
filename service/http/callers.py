"""Who is calling, as FastAPI dependencies. Handlers declare only what they need.

They are `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread, and the hop costs
more than the work (the token and revocation lookups are single indexed DB-API reads, see db.hot)."""

from __future__ import annotations

import functools
import ssl
from typing import Annotated

from fastapi import Depends, Request

from service import metrics
from service.authority import Authority, Caller, ClientIdentity, is_renewal_token
from service.errors import AuthenticationError, InvalidCredentialsError, RevokedCertificateError
from service.http.proxy import NO_PROXY, ProxyConfig, client_address, forwarded_certificate, peer_address


async def get_authority(request: Request) -> Authority:
    authority: Authority = request.app.state.authority
    return authority


async def peer_certificate(request: Request) -> bytes | None:
    """The DER client certificate: from this TLS connection (the TLS layer put it in the ASGI scope), or, from
    a trusted proxy that terminated TLS, from its header. Tests over httpx.ASGITransport override this."""
    tls = request.scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if chain:
        return _der(chain[0])
    proxy: ProxyConfig = getattr(request.app.state, "proxy", NO_PROXY)
    value = request.headers.get(proxy.certificate_header)
    return forwarded_certificate(proxy, peer_address(request), value)



@functools.lru_cache(maxsize=1024)
def _der(pem: str) -> bytes:
    """The same certificate on every request of a keep-alive connection: decoded once."""
    return ssl.PEM_cert_to_DER_cert(pem)


AuthorityDep = Annotated[Authority, Depends(get_authority)]
PeerCertificateDep = Annotated[bytes | None, Depends(peer_certificate)]


async def optional_caller(request: Request, authority: AuthorityDep, peer: PeerCertificateDep) -> Caller | None:
    """A bearer token if one is sent (it wins), else the TLS client certificate, else nobody."""
    header = request.headers.get("authorization")
    caller: Caller | None = None
    if header is not None:
        address = client_address(request)
        authority.failures.check(address, BEARER)  # 429 for an address past its failures, before any lookup
        try:
            caller = _bearer(request, authority, header, address)
        except InvalidCredentialsError:  # a token that names no one; not a known one expired or used up
            authority.failures.failed(address, BEARER)
            raise
    elif peer is not None:
        caller = _identify(request, authority, peer)
    if caller is not None:
        request.state.caller = caller.label
    return caller


BEARER = "bearer token"


def _bearer(request: Request, authority: Authority, header: str, address: str | None) -> Caller:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        metrics.token_refused("malformed")
        raise InvalidCredentialsError("use 'Authorization: Bearer <token>'")
    token = token.strip()
    if not is_renewal_token(token):
        return authority.authenticate_token(token, address=address)
    if request.method == "POST" and request.scope["path"] == "/csr":
        return authority.authenticate_renewal_token(token, address=address)
    raise AuthenticationError("a renewal token is good only for POST /csr; use an API token")


async def require_caller(caller: Annotated[Caller | None, Depends(optional_caller)]) -> Caller:
    if caller is None:
        raise AuthenticationError("send a bearer token or present a client certificate")
    return caller


async def require_client(request: Request, authority: AuthorityDep, peer: PeerCertificateDep) -> ClientIdentity:
    if peer is None:
        raise AuthenticationError("this endpoint needs a client certificate issued by this CA")
    identity = _identify(request, authority, peer)
    request.state.caller = identity.label
    return identity


def _identify(request: Request, authority: Authority, peer: bytes) -> ClientIdentity:
    try:
        return authority.identify_client(peer, address=client_address(request))
    except RevokedCertificateError as exc:
        request.state.caller = f"revoked-cert:{exc.serial}"  # so the access log names who was refused
        raise


CallerDep = Annotated[Caller, Depends(require_caller)]
ClientDep = Annotated[ClientIdentity, Depends(require_client)]
