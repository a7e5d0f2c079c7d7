"""Issued certificates: read one, revoke one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.concurrency import run_in_threadpool

from service.api.deps import AuthorityDep, CallerDep
from service.api.media import PEM_CHAIN, wants_pem_chain
from service.api.schemas import CertificateResponse, RevokeRequest, pem

router = APIRouter(prefix="/certs", tags=["certificates"])


@router.get(
    "/{serial}",
    response_model=CertificateResponse,
    responses={200: {"content": {PEM_CHAIN: {}}}},
    summary="One certificate (admin/read token, or its holder over mTLS)",
)
def get_certificate(serial: str, request: Request, authority: AuthorityDep, caller: CallerDep) -> Any:
    stored = authority.get_certificate(serial, caller=caller)
    if wants_pem_chain(request):
        return Response("".join(pem(c) for c in [stored.certificate, *authority.chain]), media_type=PEM_CHAIN)
    return CertificateResponse.build(stored)


@router.post(
    "/{serial}/revoke",
    response_model=CertificateResponse,
    summary="Revoke a certificate (admin/revoke token, or its holder over mTLS)",
)
async def revoke_certificate(
    serial: str,
    authority: AuthorityDep,
    caller: CallerDep,
    body: Annotated[RevokeRequest | None, Body()] = None,
) -> Any:
    reason = body.reason if body is not None else None
    stored = await run_in_threadpool(authority.revoke, serial, reason=reason, caller=caller)
    return CertificateResponse.build(stored)
