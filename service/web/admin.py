"""Console pages that need an admin token: tokens (the secret shown once), a PKCS#12 bundle for a new person,
and the audit trail. The authority decides who may; a read token gets its 403 here as from the API."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.authority import SCOPES
from service.ca.pkcs12 import MIN_PASSWORD_LENGTH
from service.errors import InvalidRequestError
from service.http.callers import AuthorityDep
from service.web.console import View, handle, redirect
from service.web.forms import parse_count

router = APIRouter(prefix="/ui", include_in_schema=False)
PKCS12 = "application/x-pkcs12"
NOTICES = {"deleted": "The token has been deleted. Sessions opened with it have ended."}


def parse_names(text: str) -> list[str]:
    """SANs typed into one field, separated by commas, spaces or new lines."""
    return [name for name in re.split(r"[\s,]+", text) if name][:100]


def _tokens_page(view: View, **context: Any) -> Response:
    tokens = view.authority.list_tokens(caller=view.caller)
    profiles = sorted(view.authority.profiles)
    notice = NOTICES.get(view.query("notice", 20))
    return view.render(
        "tokens.html", section="tokens", tokens=tokens, scopes=SCOPES, profiles=profiles, notice=notice, **context
    )


@router.get("/tokens")
async def tokens(request: Request, authority: AuthorityDep) -> Response:
    return await handle(request, authority, _tokens_page)


@router.post("/tokens")
async def create_token(request: Request, authority: AuthorityDep) -> Response:
    def create(view: View) -> Response:
        form = view.form
        hours = parse_count(form.get("ttl_hours", ""), "the lifetime in hours", 87600)
        new = view.authority.create_token(
            caller=view.caller,
            scope=form.get("scope") or None,
            cn=form.get("cn", "").strip() or None,
            sans=parse_names(form.get("sans", "")),
            profile=form.get("profile") or None,
            ttl=dt.timedelta(hours=hours) if hours else None,
            uses=parse_count(form.get("uses", ""), "uses", 1_000_000),
        )
        return _tokens_page(view, created=new, created_enrollment=bool(form.get("cn", "").strip()))

    return await handle(request, authority, create, change=True)


@router.post("/tokens/{token_id}/delete")
async def delete_token(token_id: str, request: Request, authority: AuthorityDep) -> Response:
    def delete(view: View) -> Response:
        view.authority.delete_token(token_id, caller=view.caller)
        return redirect("/ui/tokens?notice=deleted")

    return await handle(request, authority, delete, change=True)


@router.get("/pkcs12")
async def pkcs12_form(request: Request, authority: AuthorityDep) -> Response:
    def show(view: View) -> Response:
        profiles = sorted(view.authority.profiles)
        return view.render("pkcs12.html", section="pkcs12", profiles=profiles, min_password=MIN_PASSWORD_LENGTH)

    return await handle(request, authority, show)


@router.post("/pkcs12")
async def pkcs12(request: Request, authority: AuthorityDep) -> Response:
    def issue(view: View) -> Response:
        form = view.form
        password = form.get("password", "")
        if password != form.get("password_again", ""):
            raise InvalidRequestError("the two passwords differ; type the same one twice")
        bundle = view.authority.issue_pkcs12(  # the same authority call as POST /pkcs12: key made here, never stored
            caller=view.caller,
            cn=form.get("cn", "").strip(),
            sans=parse_names(form.get("sans", "")),
            password=password.encode(),
            profile=form.get("profile") or None,
            validity_days=parse_count(form.get("validity_days", ""), "validity in days", 3650),
            legacy=form.get("legacy") == "on",
        )
        serial = bundle.issued.summary.serial
        headers = {
            "Content-Disposition": f'attachment; filename="{serial}.p12"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
        return Response(bundle.data, media_type=PKCS12, headers=headers)

    return await handle(request, authority, issue, change=True)


@router.get("/audit")
async def audit(request: Request, authority: AuthorityDep) -> Response:
    def show(view: View) -> Response:
        page = view.authority.audit_page(caller=view.caller, limit=50, cursor=view.query("cursor", 200) or None)
        return view.render("audit.html", section="audit", page=page, paged=bool(view.query("cursor")))

    return await handle(request, authority, show)
