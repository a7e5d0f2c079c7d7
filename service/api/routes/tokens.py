"""API tokens: create (the secret is shown once), list (never the secrets), delete."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from service.api.schemas import TokenCreatedResponse, TokenCreateRequest, TokenListResponse, TokenResponse
from service.http.callers import AuthorityDep, CallerDep

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.post("", status_code=201, response_model=TokenCreatedResponse, summary="Create a token (admin)")
async def create_token(
    body: TokenCreateRequest, authority: AuthorityDep, caller: CallerDep, response: Response
) -> TokenCreatedResponse:
    response.headers["Cache-Control"] = "no-store"  # the answer holds the token: no cache may keep it
    ttl = dt.timedelta(seconds=body.ttl_seconds) if body.ttl_seconds is not None else None
    new = await run_in_threadpool(
        authority.create_token,
        caller=caller,
        scope=body.scope,
        cn=body.cn,
        sans=body.sans,
        profile=body.profile,
        ttl=ttl,
        uses=body.uses,
    )
    return TokenCreatedResponse(token=new.token, id=new.id, expires_at=new.expires_at)


@router.get("", response_model=TokenListResponse, summary="List tokens, without their secrets (admin)")
def list_tokens(authority: AuthorityDep, caller: CallerDep) -> TokenListResponse:
    tokens = authority.list_tokens(caller=caller)
    return TokenListResponse(items=[TokenResponse.model_validate(t, from_attributes=True) for t in tokens])


@router.delete("/{token_id}", status_code=204, response_class=Response, summary="Delete a token (admin)")
def delete_token(token_id: str, authority: AuthorityDep, caller: CallerDep) -> Response:
    authority.delete_token(token_id, caller=caller)
    return Response(status_code=204)
