"""GET /audit: what happened, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.api.schemas import AuditEventResponse, AuditListResponse
from service.http.callers import AuthorityDep, CallerDep

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=AuditListResponse, summary="Audit events, newest first (admin)")
def list_audit(
    authority: AuthorityDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AuditListResponse:
    page = authority.audit_page(caller=caller, limit=limit, cursor=cursor)
    items = [AuditEventResponse.model_validate(e, from_attributes=True) for e in page.items]
    return AuditListResponse(items=items, next_cursor=page.next_cursor)
