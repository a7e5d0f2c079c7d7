"""The console's frame: sessions (cookie in, caller out), CSRF on every change, login and logout (forms: web.forms).

Every page goes through `handle`: no session -> the login page; a POST without the session's CSRF token -> 403;
a refusal of the authority -> an HTML error page with the same status the API would give. Handlers are plain
functions of a `View`, run in a worker thread (they read and write the database through the authority)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from service.authority import Authority
from service.authority.sessions import LOGIN_FORM_LIFETIME, SESSION_LIFETIME, ConsoleSession
from service.errors import (
    AuthenticationError,
    InvalidCredentialsError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceError,
)
from service.http.callers import AuthorityDep
from service.http.problems import status_for
from service.http.proxy import client_address
from service.web.forms import read_form
from service.web.pages import error_page, render, secure

# `__Host-`: the browser takes these cookies only from this very origin over HTTPS, with Path=/ and no Domain, so
# a sibling subdomain (or a plain-HTTP page on this host) can neither set nor overwrite them
SESSION_COOKIE = "__Host-pocketca_session"
LOGIN_COOKIE = "__Host-pocketca_login"  # binds the login form (authority.sessions): there is no session yet
COOKIE_PATH = "/"
LOGIN = "console login"  # what a failed login counts as (authority.throttle)

router = APIRouter(prefix="/ui", include_in_schema=False)


@dataclass
class View:
    request: Request
    authority: Authority
    console: ConsoleSession
    form: dict[str, str] = field(default_factory=dict)

    @property
    def caller(self) -> Any:
        return self.console.caller

    def render(self, template: str, status_code: int = 200, **context: Any) -> Response:
        return render(template, status_code, console=self.console, **context)

    def query(self, name: str, max_length: int = 255) -> str:
        return self.request.query_params.get(name, "").strip()[:max_length]


Handler = Callable[[View], Response]


def redirect(url: str) -> Response:
    return secure(RedirectResponse(url, status_code=303))


async def handle(request: Request, authority: Authority, handler: Handler, *, change: bool = False) -> Response:
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return redirect("/ui/login")
    try:
        console = await run_in_threadpool(authority.console_sessions.resume, secret, address=client_address(request))
    except AuthenticationError:
        response = redirect("/ui/login?ended=1")
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict")
        return response
    request.state.caller = console.caller.label
    view = View(request, authority, console)
    try:
        if change:
            view.form = await read_form(request)
            if not hmac.compare_digest(view.form.get("csrf", ""), console.csrf_token):
                raise PermissionDeniedError("the form's CSRF token is missing or stale; reload the page and try again")
        return await run_in_threadpool(handler, view)
    except ServiceError as exc:
        return error_page(exc, console=console)


# --- login and logout ---------------------------------------------------------------------------


@router.get("/")
async def index(request: Request, authority: AuthorityDep) -> Response:
    return await handle(request, authority, lambda view: redirect("/ui/certs"))


@router.get("/login")
async def login_form(request: Request, authority: AuthorityDep) -> Response:
    ended = "Your session has ended; log in again." if request.query_params.get("ended") else None
    return await run_in_threadpool(_login_page, authority, request.cookies.get(LOGIN_COOKIE), notice=ended)


def _login_page(authority: Authority, cookie: str | None, status_code: int = 200, **context: Any) -> Response:
    """The form, bound to the login cookie: the one presented when the server made it (two tabs share it), else a
    new one; its CSRF token is the server's MAC of it."""
    sessions = authority.console_sessions
    if not sessions.is_login_cookie(cookie):
        cookie = sessions.new_login_cookie()
    assert cookie is not None
    response = render("login.html", status_code, csrf=sessions.login_csrf(cookie), **context)
    max_age = int(LOGIN_FORM_LIFETIME.total_seconds())
    response.set_cookie(
        LOGIN_COOKIE, cookie, max_age=max_age, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict"
    )
    return response


@router.post("/login")
async def login(request: Request, authority: AuthorityDep) -> Response:
    cookie = request.cookies.get(LOGIN_COOKIE)
    address = client_address(request)
    sessions = authority.console_sessions
    try:
        authority.failures.check(address, LOGIN)  # 429 for an address past its failures, before any lookup
        form = await read_form(request)
        bound = await run_in_threadpool(sessions.is_login_cookie, cookie)
        if not bound or not hmac.compare_digest(form.get("csrf", ""), sessions.login_csrf(cookie or "")):
            raise PermissionDeniedError("the login form's CSRF token is missing or stale; reload the page")
        token = form.get("token", "").strip()
        if not token:
            raise AuthenticationError("enter an admin or read token")
        try:
            console = await run_in_threadpool(sessions.open, token, address=address)
        except InvalidCredentialsError:  # a token that names no one (not a known one expired or used up)
            authority.failures.failed(address, LOGIN)
            raise
    except ServiceError as exc:
        page = await run_in_threadpool(_login_page, authority, cookie, status_for(exc), error=exc.detail)
        if isinstance(exc, RateLimitedError):
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
    request.state.caller = console.caller.label
    response = redirect("/ui/certs")
    response.set_cookie(
        SESSION_COOKIE,
        console.secret,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path=COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict")
    return response


@router.post("/logout")
async def logout(request: Request, authority: AuthorityDep) -> Response:
    def close(view: View) -> Response:
        view.authority.console_sessions.close(view.console)
        response = redirect("/ui/login")
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict")
        return response

    return await handle(request, authority, close, change=True)


@router.get("/static/console.css")
async def stylesheet() -> Response:
    css = resources.files("service.web").joinpath("static/console.css").read_bytes()
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})
