"""POST /pkcs12: a key made here, its certificate and the chain, as a password-protected PKCS#12 bundle."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from service.api.schemas import PKCS12Request
from service.http.callers import AuthorityDep, CallerDep

router = APIRouter(tags=["certificates"])
PKCS12 = "application/x-pkcs12"


@router.post(
    "/pkcs12",
    status_code=201,
    response_class=Response,
    responses={201: {"content": {PKCS12: {}}, "headers": {"Location": {"schema": {"type": "string"}}}}},
    summary="Issue a key and certificate as PKCS#12 (admin/issue token); the key is never stored",
)
async def create_pkcs12(body: PKCS12Request, authority: AuthorityDep, caller: CallerDep) -> Response:
    bundle = await run_in_threadpool(
        authority.issue_pkcs12,
        caller=caller,
        cn=body.cn,
        sans=body.sans,
        profile=body.profile,
        validity_days=body.validity_days,
        password=body.password.get_secret_value().encode(),
        legacy=body.legacy,
    )
    serial = bundle.issued.summary.serial
    headers = {
        "Location": f"/certs/{serial}",
        "Content-Disposition": f'attachment; filename="{serial}.p12"',
        "Cache-Control": "no-store",
    }
    return Response(bundle.data, status_code=201, media_type=PKCS12, headers=headers)
