"""GET /whoami: the identity of the client certificate presented in the TLS handshake."""

import functools

from fastapi import APIRouter, Response

from service.api.schemas import IdentityResponse
from service.ca.inspect import CertificateSummary
from service.http.callers import ClientDep
from service.http.lean import LeanRoute

router = APIRouter(tags=["identity"], route_class=LeanRoute)  # the hot path: see http.lean


@router.get(
    "/whoami",
    response_model=IdentityResponse,
    responses={200: {"content": {"text/html": {}}, "description": "JSON; a page for browsers (Accept: text/html)"}},
    summary="Who the client certificate says you are",
)
async def whoami(identity: ClientDep) -> Response:
    # revocation is checked on every request (ClientDep); the answer depends only on the certificate
    return Response(_identity_document(identity.summary), media_type="application/json")


@functools.lru_cache(maxsize=4096)
def _identity_document(summary: CertificateSummary) -> bytes:
    return IdentityResponse.build_from(summary).model_dump_json().encode()
