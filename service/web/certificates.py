"""Console pages about certificates: the list (the contract's filters and paging), one certificate (details,
PEM download, revocation) and the ones expiring soon, with their timeline."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Request
from starlette.responses import Response

from service.authority.certificates import STATUSES
from service.ca.crl import REVOCATION_REASONS
from service.errors import UnknownStatusError
from service.http.callers import AuthorityDep
from service.http.media import PEM_CHAIN
from service.web.console import View, handle, redirect
from service.web.forms import parse_count, parse_when
from service.web.timeline import build_timeline

router = APIRouter(prefix="/ui", include_in_schema=False)
PAGE_SIZE = 25
NOTICES = {"revoked": "The certificate has been revoked. The CRL and OCSP say so from now on."}


def _list(view: View) -> Response:
    cn, status, before = view.query("cn"), view.query("status", 16), view.query("expires_before", 40)
    filters = {"cn": cn, "status": status, "expires_before": before, "limit": view.query("limit", 4)}
    if status and status not in STATUSES:
        raise UnknownStatusError(status, STATUSES)
    page = view.authority.list_certificates(
        caller=view.caller,
        cn=cn or None,
        status=status or None,
        expires_before=parse_when(before),
        limit=_limit(view.query("limit", 4)),
        cursor=view.query("cursor", 200) or None,
    )
    kept = {k: v for k, v in filters.items() if v}
    return view.render(
        "certs.html",
        section="certs",
        page=page,
        filters=filters,
        statuses=STATUSES,
        kept=kept,
        paged=bool(view.query("cursor")),
    )


@router.get("/certs")
async def certificates(request: Request, authority: AuthorityDep) -> Response:
    return await handle(request, authority, _list)


@router.get("/certs/{serial}")
async def certificate(serial: str, request: Request, authority: AuthorityDep) -> Response:
    def show(view: View) -> Response:
        stored = view.authority.get_certificate(serial, caller=view.caller)
        pem = _pem(stored.certificate)
        notice = NOTICES.get(view.query("notice", 20))
        return view.render(
            "cert.html", section="certs", cert=stored, pem=pem, reasons=REVOCATION_REASONS, notice=notice
        )

    return await handle(request, authority, show)


@router.get("/certs/{serial}/pem")
async def certificate_pem(serial: str, request: Request, authority: AuthorityDep) -> Response:
    def download(view: View) -> Response:
        stored = view.authority.get_certificate(serial, caller=view.caller)
        chain = [stored.certificate, *view.authority.chain]
        body = "".join(_pem(c) for c in chain)
        name = stored.summary.serial
        headers = {"Content-Disposition": f'attachment; filename="{name}.pem"', "Cache-Control": "no-store"}
        return Response(body, media_type=PEM_CHAIN, headers=headers)

    return await handle(request, authority, download)


@router.post("/certs/{serial}/revoke")
async def revoke(serial: str, request: Request, authority: AuthorityDep) -> Response:
    def do(view: View) -> Response:
        stored = view.authority.revoke(serial, reason=view.form.get("reason") or None, caller=view.caller)
        return redirect(f"/ui/certs/{stored.summary.serial}?notice=revoked")

    return await handle(request, authority, do, change=True)


@router.get("/expiring")
async def expiring(request: Request, authority: AuthorityDep) -> Response:
    def show(view: View) -> Response:
        days = parse_count(view.query("days", 4), "days", 3650) or 30
        now = view.authority.clock()
        horizon = dt.timedelta(days=days)
        page = view.authority.list_certificates(
            caller=view.caller, status="valid", expires_before=now + horizon, limit=500
        )
        items = sorted(page.items, key=lambda i: i.not_after)
        timeline = build_timeline(items, now, horizon)
        return view.render(
            "expiring.html", section="expiring", items=items, days=days, timeline=timeline, more=page.next_cursor
        )

    return await handle(request, authority, show)


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(Encoding.PEM).decode()


def _limit(text: str) -> int:
    return parse_count(text, "limit", 200) or PAGE_SIZE
