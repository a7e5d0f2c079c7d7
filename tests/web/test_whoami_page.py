"""GET /whoami with Accept: text/html: a page for people, the same refusals as the JSON (401/403).

Run twice: with a dependency override playing the certificate, and with the certificate in the ASGI TLS scope as
uvicorn's TLS layer puts it (then http.lean.LeanDispatch hands JSON requests straight to the JSON route, and must
leave HTML to the page's route)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.types import Receive, Scope, Send

from service.app import create_app
from service.authority import Authority
from service.http.callers import peer_certificate
from tests.api.conftest import Holder
from tests.helpers import ForeignCA

pytestmark = pytest.mark.anyio
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

@pytest.fixture(params=["override", "tls-scope"])
async def get(request: pytest.FixtureRequest, authority: Authority) -> AsyncIterator[object]:
    app = create_app(authority=authority)
    peer: dict[str, bytes | None] = {"der": None}
    seen: list[Scope] = []

    async def with_tls(scope: Scope, receive: Receive, send: Send) -> None:
        if request.param == "tls-scope" and peer["der"] is not None:
            scope["extensions"] = {"tls": {"client_cert_chain": [ssl.DER_cert_to_PEM_cert(peer["der"])]}}
        seen.append(scope)
        await app(scope, receive, send)

    if request.param == "override":
        app.dependency_overrides[peer_certificate] = lambda: peer["der"]
    transport = httpx.ASGITransport(app=with_tls, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:

        async def call(der: bytes | None, accept: str) -> tuple[httpx.Response, bool]:
            peer["der"] = der
            response = await http.get("/whoami", headers={"Accept": accept})
            return response, seen[-1]["endpoint"].__name__  # the route that answered

        yield call


async def test_page_names_the_holder(get, issue_holder) -> None:  # type: ignore[no-untyped-def]
    holder: Holder = issue_holder("Alice Example", ["alice@example.com"])
    response, endpoint = await get(holder.der, BROWSER_ACCEPT)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert response.headers["cache-control"] == "no-store"
    assert "Hello, Alice Example" in response.text
    assert holder.serial in response.text and "CN=pocketca root CA" in response.text
    assert endpoint == "whoami_page"


async def test_json_stays_the_default(get, issue_holder) -> None:  # type: ignore[no-untyped-def]
    holder: Holder = issue_holder("alice.example.com")
    for accept in ("*/*", "application/json"):
        response, endpoint = await get(holder.der, accept)
        assert endpoint == "whoami"  # the JSON route (api.routes.whoami)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json()["cn"] == "alice.example.com"


async def test_no_certificate_is_a_401_page(get) -> None:  # type: ignore[no-untyped-def]
    response, _ = await get(None, BROWSER_ACCEPT)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert "No client certificate" in response.text


async def test_revoked_is_a_403_page(get, issue_holder, authority: Authority, admin_token: str) -> None:  # type: ignore[no-untyped-def]
    holder: Holder = issue_holder("bob.example.com")
    authority.revoke(holder.serial, reason="keyCompromise", caller=authority.authenticate_token(admin_token))
    response, _ = await get(holder.der, BROWSER_ACCEPT)
    assert response.status_code == 403
    assert "Your certificate has been revoked" in response.text
    assert holder.serial in response.text


async def test_a_certificate_we_did_not_issue_is_a_403_page(get, foreign_ca: ForeignCA) -> None:  # type: ignore[no-untyped-def]
    _, certificate = foreign_ca.issue_client("alice")
    response, _ = await get(certificate.public_bytes(Encoding.DER), BROWSER_ACCEPT)
    assert response.status_code == 403
    assert "not issued by this pocketca" in response.text
