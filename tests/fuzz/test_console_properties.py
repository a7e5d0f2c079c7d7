"""Property tests (hypothesis) of the web console's forms and queries, logged in with an admin token.

Must hold for any input: no 5xx and no traceback; every refusal an HTML page (the console answers people) with a
4xx; what is accepted is right for its input (a token of the scope asked for, a PKCS#12 bundle for the CN asked
for). The fields take any text: NUL and other controls, digits that are not ASCII (`³`, `٣`), separators, huge
values, bytes that are not UTF-8; numbers at and beyond their bounds; times beyond the years UTC can hold.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from service.app import create_app
from tests.fuzz.conftest import FuzzEnv, count, saw_status

pytestmark = pytest.mark.anyio

FORMS = settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
TOKEN = re.compile(r"pca_[0-9a-f]{16}_[A-Za-z0-9_-]+")

# text a person, or someone pretending to be one, might type or paste
HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["", " ", "\x00", "a\x00b", "³", "²", "٣", "１２", "1e3", "-1", "0", "1", "24", "87600", "87601", "99999999999",
         "1_000", " 7 ", "\u202e", "a\u2028b", "\x85", "*.com", "xn--zz.example", "www.example.com..", "é" * 70,
         "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00", "2030-01-31", "2030-02-30", "x" * 5000]
    ),
    st.integers(-(10**20), 10**20).map(str),
)  # fmt: skip
# what goes into a field that takes a count: numbers at and past their bounds, and digits of any script
COUNT_TEXT = st.one_of(
    st.integers(-5, 4000).map(str),
    st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=3),  # ³, ٣, １２ ... (str.isdigit says yes)
    HOSTILE_TEXT,
)
# each page's own query parameters, each present or not
PAGE_QUERIES = {
    "/ui/certs": {"cn": HOSTILE_TEXT, "status": HOSTILE_TEXT, "expires_before": HOSTILE_TEXT, "limit": COUNT_TEXT,
                  "cursor": HOSTILE_TEXT, "notice": HOSTILE_TEXT},
    "/ui/expiring": {"days": COUNT_TEXT},
    "/ui/audit": {"cursor": HOSTILE_TEXT},
    "/ui/tokens": {"notice": HOSTILE_TEXT},
    "/ui/login": {"ended": HOSTILE_TEXT},
}  # fmt: skip


@pytest.fixture(scope="module")
async def console(fuzz_env: FuzzEnv) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A browser logged in with the admin token, and its session's CSRF token."""
    app = create_app(authority=fuzz_env.authority)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("192.0.2.200", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver", timeout=30) as http:
        page = await http.get("/ui/login")
        csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        response = await http.post("/ui/login", data={"csrf": csrf, "token": fuzz_env.admin_token})
        assert response.status_code == 303, response.text
        tokens = await http.get("/ui/tokens")
        yield http, CSRF.search(tokens.text).group(1)  # type: ignore[union-attr]


def assert_page(response: httpx.Response) -> None:
    """What every console answer must be: no 5xx, no traceback, refusals as HTML pages with the usual headers."""
    saw_status(response.status_code)
    assert response.status_code < 500, (response.status_code, response.text[:600])
    assert b"Traceback" not in response.content
    if response.status_code in (404, 405) and response.headers["content-type"] == "application/problem+json":
        return  # no console route matched that path (a serial with a slash): the router's own answer
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("text/html"), response.headers
        assert response.headers["content-security-policy"].startswith("default-src 'self'")


def count_in_range(text: str, maximum: int) -> bool:
    text = text.strip()
    return not text or (text.isascii() and text.isdigit() and 1 <= int(text) <= maximum)


def form(fields: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(fields).encode()


@FORMS
@given(
    scope=st.one_of(st.sampled_from(["", "admin", "issue", "revoke", "read"]), HOSTILE_TEXT),
    cn=HOSTILE_TEXT,
    sans=HOSTILE_TEXT,
    profile=st.one_of(st.sampled_from(["", "client", "server"]), HOSTILE_TEXT),
    ttl_hours=COUNT_TEXT,
    uses=COUNT_TEXT,
)
@example(scope="", cn="0", sans="", profile="", ttl_hours="1", uses="1")  # a CI run drew it: an enrollment token
async def test_token_form(
    console: tuple[httpx.AsyncClient, str], scope: str, cn: str, sans: str, profile: str, ttl_hours: str, uses: str
) -> None:
    """POST /ui/tokens: a page with the new token, of the scope asked for; or a 4xx page, and always a 400 for a
    count that is not ASCII digits in range."""
    count("console: token form")
    http, csrf = console
    fields = {"csrf": csrf, "scope": scope, "cn": cn, "sans": sans, "profile": profile, "ttl_hours": ttl_hours}
    fields["uses"] = uses
    note(repr(fields))
    response = await http.post("/ui/tokens", data=fields)
    assert_page(response)
    if not count_in_range(ttl_hours, 87600) or not count_in_range(uses, 1_000_000) or "\x00" in str(fields):
        assert response.status_code == 400, response.text[:400]
    if response.status_code == 200:
        made = TOKEN.findall(response.text)
        assert len(made) == 1, response.text[:400]
        shown = re.search(r"<h2>New (\w+) token</h2>", response.text)
        # a CN makes an enrollment token, whatever the scope field says (web/admin.py names it so on the page)
        expected = "enrollment" if cn.strip() else (scope or ("issue" if sans.strip() else "admin"))
        assert shown and shown.group(1) == expected


@FORMS
@given(
    cn=HOSTILE_TEXT,
    sans=HOSTILE_TEXT,
    profile=st.one_of(st.sampled_from(["", "client", "peer"]), HOSTILE_TEXT),
    validity=COUNT_TEXT,
    legacy=st.sampled_from(["on", "", "off", "\x00"]),
)
async def test_new_person_form(
    console: tuple[httpx.AsyncClient, str], cn: str, sans: str, profile: str, validity: str, legacy: str
) -> None:
    """POST /ui/pkcs12: a PKCS#12 bundle holding exactly the CN asked for, or a 4xx page."""
    count("console: new person form")
    http, csrf = console
    password = "fuzz password 123"
    fields = {"csrf": csrf, "cn": cn, "sans": sans, "profile": profile, "validity_days": validity}
    fields |= {"password": password, "password_again": password, "legacy": legacy}
    note(repr(fields))
    response = await http.post("/ui/pkcs12", data=fields)
    assert_page(response)
    if not count_in_range(validity, 3650) or "\x00" in str(fields):
        assert response.status_code == 400, response.text[:400]
    if response.status_code == 200:
        assert response.headers["content-type"] == "application/x-pkcs12"
        bundle = pkcs12.load_pkcs12(response.content, password.encode())
        assert bundle.cert is not None
        names = bundle.cert.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        assert [n.value for n in names] == [cn.strip()]


@st.composite
def page_queries(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    path = draw(st.sampled_from(sorted(PAGE_QUERIES)))
    fields = PAGE_QUERIES[path]
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, unique=True))
    return path, {name: draw(fields[name]) for name in chosen}


@settings(FORMS, max_examples=150)
@given(page=page_queries(), raw=st.booleans())
async def test_page_queries(
    console: tuple[httpx.AsyncClient, str], page: tuple[str, dict[str, str]], raw: bool
) -> None:
    """Any query on any page: the page (or a redirect) or a 4xx page; `days` and `limit` only as ASCII digits."""
    count("console: page queries")
    http, _ = console
    path, values = page
    # raw: as typed into the address bar, where only what httpx refuses to send (controls, '#', '&') is escaped
    parts = []
    for name, value in values.items():
        typed = re.sub(r"[\x00-\x20\x7f#&]", lambda m: urllib.parse.quote(m.group()), value)
        parts.append(f"{name}={typed if raw else urllib.parse.quote(value, safe='')}")
    query = "&".join(parts)
    note(repr(query))
    response = await http.get(f"{path}?{query}")
    assert_page(response)
    if raw:  # typed, `+` is a space and `%41` an A: what the page read is not `values`
        return
    # the console reads at most 4 characters of either, stripped (`0001:` is `0001`)
    if path == "/ui/expiring" and not count_in_range(values.get("days", "").strip()[:4], 3650):
        assert response.status_code == 400
    if path == "/ui/certs" and not count_in_range(values.get("limit", "").strip()[:4], 200):
        assert response.status_code == 400


@FORMS
@given(serial=HOSTILE_TEXT, reason=HOSTILE_TEXT, body=st.one_of(st.none(), st.binary(max_size=200)))
async def test_revoke_form_and_raw_bodies(
    console: tuple[httpx.AsyncClient, str], serial: str, reason: str, body: bytes | None
) -> None:
    """POST /ui/certs/{serial}/revoke with any serial, reason, or a body of any bytes (not UTF-8, no CSRF)."""
    count("console: revoke form and raw bodies")
    http, csrf = console
    path = "/ui/certs/" + urllib.parse.quote(serial[:80], safe="") + "/revoke"
    note(repr((path, reason, body)))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    content = form({"csrf": csrf, "reason": reason}) if body is None else body
    response = await http.post(path, content=content, headers=headers)
    assert_page(response)
    if body is not None:  # no CSRF token in random bytes, so nothing changed
        assert response.status_code >= 400 or response.status_code in (303, 307, 404)


@FORMS
@given(csrf=HOSTILE_TEXT, token=HOSTILE_TEXT, cookie=st.one_of(st.none(), HOSTILE_TEXT.map(lambda t: t[:100])))
async def test_login_form(fuzz_env: FuzzEnv, csrf: str, token: str, cookie: str | None) -> None:
    """POST /ui/login with any CSRF token, token and login cookie: a 4xx page, never a session."""
    count("console: login form")
    app = create_app(authority=fuzz_env.authority)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("192.0.2.201", 40001))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if cookie is not None and cookie.isascii() and cookie.isprintable() and ";" not in cookie:
            headers["Cookie"] = f"__Host-pocketca_login={cookie}"
        note(repr((csrf, token, headers)))
        response = await http.post("/ui/login", content=form({"csrf": csrf, "token": token}), headers=headers)
        assert_page(response)
        assert 400 <= response.status_code < 500
        assert "__Host-pocketca_session" not in response.headers.get("set-cookie", "")
