"""Issued certificates: read one, revoke one."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from service.api.schemas import (
    CertificateListItem,
    CertificateListResponse,
    CertificateResponse,
    RevokeRequest,
    pem,
)
from service.http.callers import AuthorityDep, CallerDep
from service.http.media import PEM_CHAIN, wants_pem_chain

router = APIRouter(prefix="/certs", tags=["certificates"])


@router.get("", response_model=CertificateListResponse, summary="Issued certificates, newest first (admin/read token)")
def list_certificates(
    authority: AuthorityDep,
    caller: CallerDep,
    cn: Annotated[str | None, Query(max_length=255)] = None,
    status: Annotated[Literal["valid", "revoked", "expired"] | None, Query()] = None,
    expires_before: Annotated[dt.datetime | None, Query(description="RFC 3339, with a zone")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> CertificateListResponse:
    page = authority.list_certificates(
        caller=caller, cn=cn, status=status, expires_before=expires_before, limit=limit, cursor=cursor
    )
    return CertificateListResponse(
        items=[CertificateListItem.model_validate(i, from_attributes=True) for i in page.items],
        next_cursor=page.next_cursor,
    )


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
