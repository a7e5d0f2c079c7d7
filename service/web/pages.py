"""Rendering: one Jinja2 environment (autoescape on, undefined names an error), the headers every page carries,
and the error page a browser sees instead of application/problem+json."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, Response
from starlette.types import Scope

from service.ca.inspect import format_time
from service.errors import ServiceError
from service.http.problems import status_for

HTML = "text/html"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def wants_html(raw_headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Browsers put text/html first in Accept; curl (*/*), httpx and the CLI do not name it, and get JSON. The
    ASGI scope's raw headers: this runs before every JSON /whoami too, where building Headers would cost more."""
    return any(name == b"accept" and b"text/html" in value for name, value in raw_headers)


def _when(value: dt.datetime | None) -> str:
    return "" if value is None else format_time(value)  # as the CLI prints it: 2027-03-07T02:19:51Z


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("service.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    return env


def secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    for name in ("console", "notice", "section"):
        context.setdefault(name, None)
    body = environment().get_template(template).render(**context)
    return secure(HTMLResponse(body, status_code=status_code))  # type: ignore[return-value]


def error_page(exc: ServiceError, **context: Any) -> HTMLResponse:
    status = status_for(exc)
    return render("error.html", status_code=status, status=status, title=exc.title, detail=exc.detail, **context)


def edge_refusal(exc: ServiceError, status: int, _scope: Scope) -> HTMLResponse:
    """A refusal made before the console saw the request (a body over the limit, a NUL in the query:
    service.http.limits), as the page a browser shows."""
    return render("error.html", status_code=status, status=status, title=exc.title, detail=exc.detail)
