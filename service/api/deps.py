"""Who is calling, as FastAPI dependencies. Handlers declare only what they need."""

from __future__ import annotations

import ssl
from typing import Annotated

from fastapi import Depends, Request

from service.authority import Authority, Caller, ClientIdentity
from service.errors import AuthenticationError, RevokedCertificateError


def get_authority(request: Request) -> Authority:
    authority: Authority = request.app.state.authority
    return authority


def peer_certificate(request: Request) -> bytes | None:
    """The DER client certificate of this TLS connection, as the TLS layer put it in the ASGI scope.

    Tests over httpx.ASGITransport (no TLS) override this dependency.
    """
    tls = request.scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return None
    return ssl.PEM_cert_to_DER_cert(chain[0])


AuthorityDep = Annotated[Authority, Depends(get_authority)]
PeerCertificateDep = Annotated[bytes | None, Depends(peer_certificate)]


def optional_caller(request: Request, authority: AuthorityDep, peer: PeerCertificateDep) -> Caller | None:
    """A bearer token if one is sent (it wins), else the TLS client certificate, else nobody."""
    header = request.headers.get("authorization")
    caller: Caller | None = None
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("use 'Authorization: Bearer <token>'")
        caller = authority.authenticate_token(token.strip(), address=_address(request))
    elif peer is not None:
        caller = _identify(request, authority, peer)
    if caller is not None:
        request.state.caller = caller.label
    return caller


def require_caller(caller: Annotated[Caller | None, Depends(optional_caller)]) -> Caller:
    if caller is None:
        raise AuthenticationError("send a bearer token or present a client certificate")
    return caller


def require_client(request: Request, authority: AuthorityDep, peer: PeerCertificateDep) -> ClientIdentity:
    if peer is None:
        raise AuthenticationError("this endpoint needs a client certificate issued by this CA")
    identity = _identify(request, authority, peer)
    request.state.caller = identity.label
    return identity


def _identify(request: Request, authority: Authority, peer: bytes) -> ClientIdentity:
    try:
        return authority.identify_client(peer, address=_address(request))
    except RevokedCertificateError as exc:
        request.state.caller = f"revoked-cert:{exc.serial}"  # so the access log names who was refused
        raise


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


CallerDep = Annotated[Caller, Depends(require_caller)]
ClientDep = Annotated[ClientIdentity, Depends(require_client)]
