"""GET /healthz: ok when the database answers and the CA key matches its certificate."""

from fastapi import APIRouter

from service.api.deps import AuthorityDep
from service.api.schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="Health check")
def healthz(authority: AuthorityDep) -> HealthResponse:
    authority.check_health()
    return HealthResponse(status="ok")
