"""The web console over ASGI: sessions, CSRF, read-only tokens, each page, and what it audits.
The same flows in a real Chromium are in tests/e2e/test_browser.py."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from service.authority import Authority
from service.settings import Settings
from tests.conftest import query
from tests.web.conftest import Browser

pytestmark = pytest.mark.anyio

PAGES = ["/ui/certs", "/ui/expiring", "/ui/tokens", "/ui/pkcs12", "/ui/audit"]


def audit_rows(settings: Settings, action: str) -> list[tuple[object, ...]]:
    return query(
        settings.data_dir,
        f"SELECT outcome, actor, serial, detail FROM audit_events WHERE action = '{action}' ORDER BY id",
    )


async def test_pages_need_a_session(browser: Browser) -> None:
    for path in ["/ui/", *PAGES, "/ui/certs/00ff"]:
        response = await browser.http.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/ui/login"


async def test_login_sets_a_strict_session_cookie_stored_hashed(
    browser: Browser, admin_token: str, settings: Settings
) -> None:
    page = await browser.http.get("/ui/login")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    response = await browser.login(admin_token)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/certs"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("__Host-pocketca_session="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "max-age", "path"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "Max-Age=28800" in cookie
    secret = browser.http.cookies["__Host-pocketca_session"]
    stored = query(settings.data_dir, "SELECT secret_hash, token_id FROM console_sessions")
    assert stored == [(hashlib.sha256(secret.encode()).hexdigest(), admin_token.split("_")[1])]
    page = await browser.http.get("/ui/certs")
    assert page.status_code == 200
    assert "Log out" in page.text
    assert audit_rows(settings, "console.login")[0][:2] == ("ok", f"token:{admin_token.split('_')[1]}")


async def test_a_wrong_token_is_refused_with_the_form_again(browser: Browser, admin_token: str) -> None:
    response = await browser.login(admin_token[:-2] + "xx")
    assert response.status_code == 401
    # the words of the form a person typed it into (issue 22: it spoke of a "bearer token")
    assert "that admin token is not valid" in response.text and "admin.token" in response.text
    assert "bearer" not in response.text.lower()
    assert 'name="token"' in response.text
    assert "__Host-pocketca_session" not in browser.http.cookies
    assert (await browser.http.get("/ui/certs")).status_code == 303


async def test_login_without_its_csrf_token_is_refused(browser: Browser, admin_token: str) -> None:
    await browser.http.get("/ui/login")
    response = await browser.http.post("/ui/login", data={"token": admin_token})
    assert response.status_code == 403
    assert "CSRF" in response.text
    assert "__Host-pocketca_session" not in browser.http.cookies


async def test_an_issue_token_cannot_open_the_console(browser: Browser, authority: Authority) -> None:
    response = await browser.login(authority.create_token(scope="issue").token)
    assert response.status_code == 403
    assert "admin or read token" in response.text


async def test_every_page_renders(browser: Browser, admin_token: str, issue) -> None:  # type: ignore[no-untyped-def]
    serial = issue("alice.example.com", days=10)
    await browser.login(admin_token)
    for path in [*PAGES, f"/ui/certs/{serial}"]:
        response = await browser.http.get(path)
        assert response.status_code == 200, f"{path}: {response.text[:300]}"
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["cache-control"] == "no-store"
        for form in re.findall(r'<form method="post".*?</form>', response.text, re.S):
            assert 'name="csrf"' in form, f"{path}: a form without a CSRF token: {form[:120]}"


async def test_search_filters_and_paging(browser: Browser, admin_token: str, issue, authority: Authority) -> None:  # type: ignore[no-untyped-def]
    for name in ("a.example.com", "b.example.com", "c.example.com"):
        issue(name)
    gone = issue("d.example.com")
    authority.revoke(gone, reason=None, caller=authority.authenticate_token(admin_token))
    await browser.login(admin_token)
    page = (await browser.http.get("/ui/certs", params={"cn": "b.example.com"})).text
    assert "b.example.com" in page and "a.example.com" not in page
    page = (await browser.http.get("/ui/certs", params={"status": "revoked"})).text
    assert "d.example.com" in page and "c.example.com" not in page
    page = (await browser.http.get("/ui/certs", params={"expires_before": "2000-01-01"})).text
    assert "No certificate matches" in page
    first = (await browser.http.get("/ui/certs", params={"limit": "2"})).text
    assert "c.example.com" in first and "a.example.com" not in first
    link = re.search(r'href="(/ui/certs\?[^"]*cursor=[^"]+)">Next page', first)
    assert link, "no next page link"
    second = (await browser.http.get(link.group(1).replace("&amp;", "&"))).text
    assert "a.example.com" in second and "c.example.com" not in second
    bad = await browser.http.get("/ui/certs", params={"status": "sleeping"})
    assert bad.status_code == 400
    assert "status must be one of" in bad.text


async def test_values_are_escaped(browser: Browser, admin_token: str, issue) -> None:  # type: ignore[no-untyped-def]
    serial = issue("<script>alert(1)</script>", sans=["x.example.com"])
    await browser.login(admin_token)
    for path in ("/ui/certs", f"/ui/certs/{serial}"):
        text = (await browser.http.get(path)).text
        assert "<script>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


async def test_revoke_needs_the_csrf_token(  # type: ignore[no-untyped-def]
    browser: Browser, admin_token: str, issue, authority: Authority, settings: Settings
) -> None:
    serial = issue("bob.example.com")
    await browser.login(admin_token)
    refused = await browser.http.post(f"/ui/certs/{serial}/revoke", data={"reason": "keyCompromise"})
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    caller = authority.authenticate_token(admin_token)
    assert authority.get_certificate(serial, caller=caller).status == "valid"
    page_url = f"/ui/certs/{serial}"
    response = await browser.post(f"{page_url}/revoke", {"reason": "keyCompromise"}, csrf_from=page_url)
    assert response.status_code == 303
    page = await browser.http.get(response.headers["location"])
    assert "has been revoked" in page.text
    assert "Revoke this certificate" not in page.text
    stored = authority.get_certificate(serial, caller=caller)
    assert (stored.status, stored.revocation_reason) == ("revoked", "keyCompromise")
    revocations = audit_rows(settings, "certificate.revoke")
    assert ("ok", f"token:{caller.token_id}", serial, "reason=keyCompromise") in revocations


async def test_a_read_token_sees_but_cannot_change(  # type: ignore[no-untyped-def]
    browser: Browser, admin_token: str, issue, authority: Authority, settings: Settings
) -> None:
    serial = issue("carol.example.com")
    read = authority.create_token(scope="read")
    assert (await browser.login(read.token)).status_code == 303
    page = await browser.http.get(f"/ui/certs/{serial}")
    assert page.status_code == 200 and "carol.example.com" in page.text
    assert "/revoke" not in page.text
    nav = (await browser.http.get("/ui/certs")).text
    assert "read only" in nav and "/ui/tokens" not in nav and "/ui/pkcs12" not in nav
    csrf = await browser.csrf("/ui/certs")  # the logout form carries it: a valid token, so only the scope refuses
    refused = await browser.http.post(f"/ui/certs/{serial}/revoke", data={"csrf": csrf, "reason": "superseded"})
    assert refused.status_code == 403
    assert "a &#39;read&#39; token may not do this" in refused.text
    assert ("refused", f"token:{read.id}", serial) == audit_rows(settings, "certificate.revoke")[-1][:3]
    for path, data in [("/ui/pkcs12", {"cn": "x", "password": "correct horse", "password_again": "correct horse"}),
                       ("/ui/tokens", {"scope": "admin"})]:
        response = await browser.http.post(path, data={"csrf": csrf, **data})
        assert response.status_code == 403, path
    assert (await browser.http.get("/ui/tokens")).status_code == 403
    admin = authority.authenticate_token(admin_token)
    assert authority.get_certificate(serial, caller=admin).status == "valid"
    assert [t.scope for t in authority.list_tokens(caller=admin)].count("admin") == 1


async def test_tokens_created_once_listed_without_secret_deleted(browser: Browser, admin_token: str) -> None:
    await browser.login(admin_token)
    response = await browser.post("/ui/tokens", {"scope": "read", "ttl_hours": "2"}, csrf_from="/ui/tokens")
    assert response.status_code == 200
    secret = re.search(r"pca_[0-9a-f]{16}_[\w-]+", response.text)
    assert secret and "shown only this once" in response.text
    token_id = secret.group(0).split("_")[1]
    listing = (await browser.http.get("/ui/tokens")).text
    assert token_id in listing and secret.group(0) not in listing
    deleted = await browser.post(f"/ui/tokens/{token_id}/delete", {}, csrf_from="/ui/tokens")
    assert deleted.status_code == 303
    assert token_id not in (await browser.http.get("/ui/tokens")).text
    bad = await browser.post("/ui/tokens", {"uses": "many"}, csrf_from="/ui/tokens")
    assert bad.status_code == 400 and "uses must be a whole number" in bad.text


async def test_pkcs12_download(browser: Browser, admin_token: str, settings: Settings) -> None:
    await browser.login(admin_token)
    form = {"cn": "Dana Example", "sans": "dana@example.com", "profile": "client",
            "password": "correct horse", "password_again": "correct horse"}
    response = await browser.post("/ui/pkcs12", form, csrf_from="/ui/pkcs12")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-pkcs12"
    assert response.headers["content-disposition"].endswith('.p12"')
    key, certificate, chain = pkcs12.load_key_and_certificates(response.content, b"correct horse")
    assert key is not None and certificate is not None and len(chain) == 1
    assert certificate.subject.rfc4514_string() == "CN=Dana Example"
    assert audit_rows(settings, "pkcs12.issue")[-1][0] == "ok"
    mismatch = await browser.post("/ui/pkcs12", {**form, "password_again": "other horse"}, csrf_from="/ui/pkcs12")
    assert mismatch.status_code == 400 and "passwords differ" in mismatch.text
    short = await browser.post("/ui/pkcs12", {**form, "password": "short", "password_again": "short"},
                               csrf_from="/ui/pkcs12")
    assert short.status_code == 400 and "at least 8 characters" in short.text


async def test_expiring_draws_a_timeline(browser: Browser, admin_token: str, issue) -> None:  # type: ignore[no-untyped-def]
    issue("soon.example.com", days=3)
    issue("later.example.com", days=20)
    issue("far.example.com", days=80)
    await browser.login(admin_token)
    page = (await browser.http.get("/ui/expiring", params={"days": "30"})).text
    svg = page[page.index("<svg"): page.index("</svg>")]
    assert svg.count("<circle") == 2
    assert "soon.example.com" in svg and "later.example.com" in svg and "far.example.com" not in svg
    assert "#c62828" in svg and "#ef6c00" in svg
    assert page.index("soon.example.com") < page.index("later.example.com")


async def test_pem_download(browser: Browser, admin_token: str, issue) -> None:  # type: ignore[no-untyped-def]
    serial = issue("erin.example.com")
    await browser.login(admin_token)
    response = await browser.http.get(f"/ui/certs/{serial}/pem")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == f'attachment; filename="{serial}.pem"'
    assert response.text.count("BEGIN CERTIFICATE") == 2


async def test_logout_and_deleted_tokens_end_the_session(  # type: ignore[no-untyped-def]
    browser: Browser, admin_token: str, authority: Authority, settings: Settings
) -> None:
    await browser.login(admin_token)
    old = browser.http.cookies["__Host-pocketca_session"]
    out = await browser.post("/ui/logout", {}, csrf_from="/ui/certs")
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert query(settings.data_dir, "SELECT count(*) FROM console_sessions") == [(0,)]
    assert "__Host-pocketca_session" not in browser.http.cookies
    replayed = await browser.http.get("/ui/certs", headers={"Cookie": f"__Host-pocketca_session={old}"})
    assert replayed.headers["location"] == "/ui/login?ended=1"
    assert audit_rows(settings, "console.logout")[0][0] == "ok"

    spare = authority.create_token(scope="admin")
    await browser.login(spare.token)
    assert (await browser.http.get("/ui/certs")).status_code == 200
    authority.delete_token(spare.id, caller=authority.authenticate_token(admin_token))
    assert (await browser.http.get("/ui/certs")).status_code == 303


async def test_a_form_that_is_not_urlencoded_is_415(browser: Browser, admin_token: str) -> None:
    await browser.login(admin_token)
    response = await browser.http.post("/ui/tokens", json={"csrf": "x"})
    assert response.status_code == 415


def test_templates_ship_with_the_package() -> None:
    import service.web

    root = Path(service.web.__file__).parent
    assert {"base.html", "login.html", "whoami.html"} <= {p.name for p in (root / "templates").iterdir()}
    assert (root / "static" / "console.css").is_file()


async def test_times_read_as_the_cli_prints_them_and_enrollment_tokens_are_called_so(  # type: ignore[no-untyped-def]
    browser: Browser, admin_token: str, issue, authority: Authority
) -> None:
    """Issue 22: the console printed `2027-03-07 02:19:51 UTC` where the CLI printed `2027-03-07T02:19:51Z`, and
    listed an enrollment token as scope `issue`."""
    serial = issue("timed")
    authority.create_token(cn="web-3", sans=["web-3.internal"])
    await browser.login(admin_token)
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    for path in ("/ui/certs", f"/ui/certs/{serial}", "/ui/tokens", "/ui/audit", "/ui/expiring?days=3650"):
        page = (await browser.http.get(path)).text
        assert stamp.search(page), path
        assert not re.search(r"\d\d:\d\d:\d\d UTC", page), path
    tokens = (await browser.http.get("/ui/tokens")).text
    row = next(r for r in tokens.split("<tr>") if "web-3" in r)
    assert "<td>enrollment</td>" in row and "<td>issue</td>" not in row
    created = await browser.post("/ui/tokens", {"cn": "web-4", "sans": "web-4.internal"}, csrf_from="/ui/tokens")
    assert "New enrollment token" in created.text
