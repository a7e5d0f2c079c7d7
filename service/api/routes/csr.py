"""POST /csr: sign a certificate signing request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from service.api.schemas import CSRRequest, IssuedCertificateResponse, chain_pem, pem
from service.errors import MediaTypeNotAcceptedError
from service.http.callers import AuthorityDep, CallerDep
from service.http.lean import LeanRoute
from service.http.media import PEM_CHAIN, wants_pem_chain

router = APIRouter(tags=["certificates"], route_class=LeanRoute)  # the hot path: see http.lean

PKCS10 = "application/pkcs10"
_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/CSRRequest"}},
        PKCS10: {"schema": {"type": "string", "format": "binary", "description": "the CSR, PEM or DER"}},
    },
}


@router.post(
    "/csr",
    status_code=201,
    response_model=IssuedCertificateResponse,
    summary="Sign a CSR",
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses={201: {"content": {PEM_CHAIN: {}}, "headers": {"Location": {"schema": {"type": "string"}}}}},
)
async def sign_csr(
    request: Request,
    authority: AuthorityDep,
    caller: CallerDep,
    profile: Annotated[str | None, Query(max_length=64, description="with application/pkcs10 only")] = None,
    validity_days: Annotated[int | None, Query(description="with application/pkcs10 only")] = None,
) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if content_type == PKCS10:
        csr = body
    elif content_type == "application/json" or content_type.endswith("+json"):
        try:
            parsed = CSRRequest.model_validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_input=False)) from None
        csr, profile, validity_days = parsed.csr.encode(), parsed.profile, parsed.validity_days
    else:
        raise MediaTypeNotAcceptedError(("application/json", PKCS10), content_type)
    # on the event loop: parsing and signing hold the GIL in any thread; the loop serves others during the commit
    issued = await authority.sign_csr_async(csr, caller=caller, profile=profile, validity_days=validity_days)
    headers = {"Location": f"/certs/{issued.summary.serial}"}
    if wants_pem_chain(request):
        leaf_first = [issued.certificate, *authority.chain]
        return Response("".join(pem(c) for c in leaf_first), 201, headers, media_type=PEM_CHAIN)
    # serialized here (pydantic-core) rather than re-validated through response_model, which only documents it
    document = IssuedCertificateResponse.build(issued, chain_pem(authority.chain)).model_dump_json()
    return Response(document, 201, headers, media_type="application/json")
