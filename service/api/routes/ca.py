"""The CA certificate and the CRL: public, cacheable."""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime

from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from service.api.schemas import pem
from service.authority import CRLDocument
from service.http.callers import AuthorityDep
from service.http.media import PEM_CHAIN, PEM_FILE, PKIX_CERT, PKIX_CRL

router = APIRouter(tags=["ca"])


@router.get("/ca", response_class=Response, responses={200: {"content": {PEM_CHAIN: {}}}}, summary="CA chain, PEM")
def get_ca_chain(authority: AuthorityDep) -> Response:
    return Response("".join(pem(c) for c in authority.chain), media_type=PEM_CHAIN)


@router.get(
    "/ca.crt", response_class=Response, responses={200: {"content": {PKIX_CERT: {}}}}, summary="CA certificate, DER"
)
def get_ca_certificate(authority: AuthorityDep) -> Response:
    return Response(authority.ca_certificate.public_bytes(Encoding.DER), media_type=PKIX_CERT)


@router.get("/crl", response_class=Response, responses={200: {"content": {PKIX_CRL: {}}}}, summary="Current CRL, DER")
async def get_crl(request: Request, authority: AuthorityDep) -> Response:
    crl = await run_in_threadpool(authority.current_crl)
    return _crl_response(request, crl, crl.der, PKIX_CRL)


@router.get(
    "/crl.pem", response_class=Response, responses={200: {"content": {PEM_FILE: {}}}}, summary="Current CRL, PEM"
)
async def get_crl_pem(request: Request, authority: AuthorityDep) -> Response:
    crl = await run_in_threadpool(authority.current_crl)
    return _crl_response(request, crl, crl.pem, PEM_FILE)


@router.get(
    "/crl/{issuer_id}",
    response_class=Response,
    responses={200: {"content": {PKIX_CRL: {}}}},
    summary="One issuer's CRL, DER (every certificate's CRL distribution point names its issuer's)",
)
async def get_issuer_crl(issuer_id: str, request: Request, authority: AuthorityDep) -> Response:
    crl = await run_in_threadpool(authority.issuer_crl, issuer_id)
    return _crl_response(request, crl, crl.der, PKIX_CRL)


@router.get(
    "/ca.crt/{issuer_id}",
    response_class=Response,
    responses={200: {"content": {PKIX_CERT: {}}}},
    summary="One issuer's certificate, DER (every certificate's AIA caIssuers names its issuer's)",
)
def get_issuer_certificate(issuer_id: str, authority: AuthorityDep) -> Response:
    return Response(authority.issuer_certificate(issuer_id).public_bytes(Encoding.DER), media_type=PKIX_CERT)


def _crl_response(request: Request, crl: CRLDocument, body: bytes, media_type: str) -> Response:
    etag = f'"crl-{crl.number}-{"pem" if media_type == PEM_FILE else "der"}"'
    max_age = max(0, int((crl.next_update - dt.datetime.now(dt.UTC)).total_seconds()))
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(crl.this_update, usegmt=True),
        "Expires": format_datetime(crl.next_update, usegmt=True),
        "Cache-Control": f"public, max-age={max_age}, no-transform, must-revalidate",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)
