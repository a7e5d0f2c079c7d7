"""The console's front door: a login form bound to a secret only the server holds (a planted login cookie yields
no CSRF token its planter can know), `__Host-` cookies, and Strict-Transport-Security on HTTPS answers."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from tests.web.conftest import CSRF, Browser

pytestmark = pytest.mark.anyio

ATTACKER = "ATTACKER"


def old_csrf_for(secret: str) -> str:
    """What the login form's token was before: a MAC keyed with the cookie itself, which whoever set it knows."""
    return hmac.new(secret.encode(), b"pocketca console csrf", hashlib.sha256).hexdigest()


def set_cookies(response: object) -> dict[str, str]:
    cookies = {}
    for header in response.headers.get_list("set-cookie"):  # type: ignore[attr-defined]
        name, _, rest = header.partition("=")
        cookies[name] = rest
    return cookies


@pytest.mark.parametrize("name", ["__Host-pocketca_login", "pocketca_login"])
async def test_a_planted_login_cookie_yields_no_token_computed_from_it(browser: Browser, name: str) -> None:
    page = await browser.http.get("/ui/login", headers={"Cookie": f"{name}={ATTACKER}"})
    assert page.status_code == 200
    match = CSRF.search(page.text)
    assert match
    assert match.group(1) != old_csrf_for(ATTACKER)
    issued = set_cookies(page)["__Host-pocketca_login"]
    assert not issued.startswith(ATTACKER)  # replaced by one the server made


async def test_a_login_with_a_planted_cookie_and_its_token_is_refused(browser: Browser, admin_token: str) -> None:
    """The login CSRF attack: the victim's browser carries the attacker's cookie and posts the attacker's token."""
    response = await browser.http.post(
        "/ui/login",
        data={"csrf": old_csrf_for(ATTACKER), "token": admin_token},
        headers={"Cookie": f"__Host-pocketca_login={ATTACKER}; pocketca_login={ATTACKER}"},
    )
    assert response.status_code == 403, response.text
    assert "CSRF" in response.text
    assert "__Host-pocketca_session" not in set_cookies(response)


async def test_a_made_up_cookie_of_the_right_shape_is_not_believed(browser: Browser, admin_token: str) -> None:
    real = set_cookies(await browser.http.get("/ui/login"))["__Host-pocketca_login"].split(";")[0]
    nonce, issued, mac = real.split(".")
    forged = f"{nonce}x.{issued}.{mac}"
    page = await browser.http.get("/ui/login", headers={"Cookie": f"__Host-pocketca_login={forged}"})
    assert set_cookies(page)["__Host-pocketca_login"].split(";")[0] != forged
    response = await browser.http.post(
        "/ui/login",
        data={"csrf": CSRF.search(page.text).group(1), "token": admin_token},  # type: ignore[union-attr]
        headers={"Cookie": f"__Host-pocketca_login={forged}"},
    )
    assert response.status_code == 403


async def test_two_tabs_share_one_login_form_binding(browser: Browser, admin_token: str) -> None:
    first = await browser.csrf("/ui/login")
    second = await browser.csrf("/ui/login")  # the cookie the server made is kept, so the first tab still works
    assert first == second
    response = await browser.http.post("/ui/login", data={"csrf": first, "token": admin_token})
    assert response.status_code == 303


async def test_cookies_are_host_only_secure_and_strict(browser: Browser, admin_token: str) -> None:
    login_cookie = set_cookies(await browser.http.get("/ui/login"))["__Host-pocketca_login"]
    session_cookie = set_cookies(await browser.login(admin_token))["__Host-pocketca_session"]
    for cookie in (login_cookie, session_cookie):
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "secure", "path=/", "samesite=strict"} <= attributes, cookie
        assert not any(a.startswith("domain") for a in attributes), cookie  # a __Host- cookie has none
    page = await browser.http.get("/ui/certs")
    assert page.status_code == 200 and "Log out" in page.text
    logout_csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    out = await browser.http.post("/ui/logout", data={"csrf": logout_csrf})
    assert re.search(r"__Host-pocketca_session=\"?\"?;.*Max-Age=0", out.headers["set-cookie"]), out.headers


@pytest.mark.parametrize("path", ["/ui/login", "/healthz", "/ca", "/acme/directory", "/nothere"])
async def test_https_answers_carry_strict_transport_security(browser: Browser, path: str) -> None:
    response = await browser.http.get(path)
    assert response.headers["strict-transport-security"] == "max-age=31536000"


@pytest.mark.parametrize("host", ["localhost", "localhost:8443", "ca.localhost", "127.0.0.1:8443", "[::1]:8443"])
async def test_not_for_localhost_or_ip_literals(browser: Browser, host: str) -> None:
    response = await browser.http.get("/ui/login", headers={"Host": host})
    assert "strict-transport-security" not in response.headers
