"""Hostile input to the console is an HTML error page with a 4xx, never a 500: digits that are not ASCII
(`days=³`, `uses=²`: str.isdigit says yes, int says no), a time that UTC takes out of the years 1 to 9999, and a
NUL in a query or a form field (PostgreSQL stores none)."""

from __future__ import annotations

import pytest

from tests.web.conftest import Browser

pytestmark = pytest.mark.anyio


def assert_error_page(response: object, status: int, says: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("text/html")  # type: ignore[attr-defined]
    assert says in response.text, response.text  # type: ignore[attr-defined]
    assert response.headers["content-security-policy"].startswith("default-src 'self'")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/ui/expiring?days=³", "days must be a whole number"),
        ("/ui/expiring?days=٣", "days must be a whole number"),  # ARABIC-INDIC DIGIT THREE: int() reads this one
        ("/ui/certs?limit=²", "limit must be a whole number"),
        ("/ui/certs?expires_before=9999-12-31T23:59:59-23:59", "outside the years 1 to 9999 in UTC"),
        ("/ui/certs?expires_before=0001-01-01T00:00:00%2B01:00", "outside the years 1 to 9999 in UTC"),
        ("/ui/certs?cn=a%00b", "NUL"),
        ("/ui/audit?cursor=%00", "NUL"),
    ],
)
async def test_hostile_queries_are_400_pages(browser: Browser, admin_token: str, path: str, says: str) -> None:
    await browser.login(admin_token)
    assert_error_page(await browser.http.get(path), 400, says)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"scope": "read", "uses": "²"}, "uses must be a whole number"),
        ({"scope": "read", "ttl_hours": "¹"}, "lifetime in hours must be a whole number"),
        ({"scope": "issue", "cn": "web\x00", "sans": "web.example"}, "NUL"),
        ({"scope": "issue", "cn": "web", "sans": "a.example b\x00.example"}, "NUL"),
    ],
)
async def test_hostile_token_forms_are_400_pages(
    browser: Browser, admin_token: str, fields: dict[str, str], says: str
) -> None:
    await browser.login(admin_token)
    response = await browser.post("/ui/tokens", fields, csrf_from="/ui/tokens")
    assert_error_page(response, 400, says)
    assert "pca_" not in response.text  # no token was made


async def test_a_nul_in_the_login_form_is_a_400_page(browser: Browser) -> None:
    csrf = await browser.csrf("/ui/login")
    response = await browser.http.post("/ui/login", data={"csrf": csrf, "token": "pca_\x00"})
    assert_error_page(response, 400, "NUL")


async def test_a_nul_in_a_form_field_name_is_a_400_page(browser: Browser, admin_token: str) -> None:
    await browser.login(admin_token)
    response = await browser.post("/ui/pkcs12", {"c\x00n": "alice"}, csrf_from="/ui/pkcs12")
    assert_error_page(response, 400, "NUL")


async def test_names_nobody_should_get_are_refused_by_the_console_too(browser: Browser, admin_token: str) -> None:
    await browser.login(admin_token)
    form = {
        "cn": "evil\u202egro.example",
        "password": "correct horse battery",
        "password_again": "correct horse battery",
    }
    response = await browser.post("/ui/pkcs12", form, csrf_from="/ui/pkcs12")
    assert response.status_code == 403 and "U+202E" in response.text
    response = await browser.post(
        "/ui/tokens", {"scope": "issue", "cn": "web", "sans": "*.com"}, csrf_from="/ui/tokens"
    )
    assert response.status_code == 400 and "public suffix" in response.text
