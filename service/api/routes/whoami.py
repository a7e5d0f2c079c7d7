"""GET /whoami: the identity of the client certificate presented in the TLS handshake."""

from fastapi import APIRouter

from service.api.deps import ClientDep
from service.api.schemas import IdentityResponse

router = APIRouter(tags=["identity"])


@router.get(
    "/whoami",
    response_model=IdentityResponse,
    responses={200: {"content": {"text/html": {}}, "description": "JSON; a page for browsers (Accept: text/html)"}},
    summary="Who the client certificate says you are",
)
async def whoami(identity: ClientDep) -> IdentityResponse:
    return IdentityResponse.build(identity)
