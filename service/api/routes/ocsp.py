"""OCSP over HTTP (RFC 6960 appendix A; RFC 5019 for GET caching). Errors are OCSP responses, not problems."""

from __future__ import annotations

import base64
import binascii
from email.utils import format_datetime

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor

from service.authority import Authority
from service.ca.ocsp import build_unsuccessful
from service.http.callers import AuthorityDep


class _Anything(Convertor[str]):
    """The rest of the path, newlines included: Starlette's `path` (`.*`) stops at one, and a request whose
    base64 carries a line break (%0A) would be a 404 problem instead of an OCSP `malformedRequest`."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("ocsp_base64", _Anything())
router = APIRouter(tags=["ocsp"])
OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {OCSP_RESPONSE: {}}, "description": "an OCSP response (also for bad requests)"}
}


@router.post(
    "/ocsp",
    response_class=Response,
    summary="OCSP, POST",
    openapi_extra={
        "requestBody": {"required": True, "content": {OCSP_REQUEST: {"schema": {"type": "string", "format": "binary"}}}}
    },
    responses=_RESPONSES,
)
async def ocsp_post(request: Request, authority: AuthorityDep) -> Response:
    return await _respond(authority, await request.body(), cacheable=False)


@router.get(
    "/ocsp/{encoded:ocsp_base64}",
    response_class=Response,
    summary="OCSP, GET (base64 request in the path)",
    responses=_RESPONSES,
)
async def ocsp_get(encoded: str, authority: AuthorityDep) -> Response:
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return Response(build_unsuccessful("malformedRequest"), media_type=OCSP_RESPONSE)
    return await _respond(authority, data, cacheable=True)


async def _respond(authority: Authority, data: bytes, *, cacheable: bool) -> Response:
    der, next_update = await run_in_threadpool(authority.answer_ocsp, data)
    headers = {}
    if cacheable and next_update is not None:
        max_age = max(0, int((next_update - authority.clock()).total_seconds()))
        headers = {
            "Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
            "Expires": format_datetime(next_update, usegmt=True),
        }
    return Response(der, media_type=OCSP_RESPONSE, headers=headers)
