"""The seed's story in a real browser: a person's PKCS#12 from POST /pkcs12, imported into a fresh NSS database,
the CA trusted, an auto-select rule for the URL, and headless Chromium opens /whoami over real TLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from tests.conftest import LiveServer, start_server
from tests.e2e.browser import Browser, need_browser
from tests.helpers import ForeignCA

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    need_browser()
    live = start_server(tmp_path_factory.mktemp("browser") / "data", extra_env={"POCKETCA_HTTP_PORT": "0"})
    yield live
    live.stop()


def test_the_person_imports_the_bundle_and_the_page_knows_them(server: LiveServer, tmp_path: Path) -> None:
    with server.client(headers={"Authorization": f"Bearer {server.admin_token}"}) as http:
        body = {"cn": "Alice Example", "sans": ["alice@example.com"], "password": PASSWORD}
        response = http.post("/pkcs12", json=body)
        assert response.status_code == 201, response.text
    bundle = tmp_path / "alice.p12"
    bundle.write_bytes(response.content)
    serial = response.headers["location"].rsplit("/", 1)[1]

    browser = Browser.fresh(tmp_path / "alice", server.ca_file)
    assert "PKCS12 IMPORT SUCCESSFUL" in browser.import_pkcs12(bundle, PASSWORD)
    assert "Alice Example" in browser.certificates()
    browser.auto_select(server.url)
    page = browser.dump_dom(f"{server.url}/whoami")
    assert "Hello, Alice Example" in page
    assert serial in page and "alice@example.com" in page
    browser.screenshot(f"{server.url}/whoami", tmp_path / "whoami.png")

    with server.client(headers={"Authorization": f"Bearer {server.admin_token}"}) as http:
        assert http.post(f"/certs/{serial}/revoke", json={"reason": "keyCompromise"}).status_code == 200
    page = browser.dump_dom(f"{server.url}/whoami")
    assert "Your certificate has been revoked" in page
    assert "Hello" not in page
    browser.screenshot(f"{server.url}/whoami", tmp_path / "whoami-revoked.png")


def test_without_the_bundle_the_page_says_so(server: LiveServer, tmp_path: Path) -> None:
    browser = Browser.fresh(tmp_path / "nobody", server.ca_file)  # the CA trusted, no certificate of one's own
    browser.auto_select(server.url)
    page = browser.dump_dom(f"{server.url}/whoami")
    assert "No client certificate" in page
    browser.screenshot(f"{server.url}/whoami", tmp_path / "whoami-none.png")


def test_a_certificate_from_another_ca_never_passes_the_handshake(
    server: LiveServer, tmp_path: Path, foreign_ca: ForeignCA
) -> None:
    """Our TLS layer verifies a presented certificate against our CA (CERT_OPTIONAL): a foreign one fails the
    handshake, so the browser shows its own error and never reaches a page of ours."""
    key, certificate = foreign_ca.issue_client("mallory.example.com")
    bundle = tmp_path / "mallory.p12"
    bundle.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"mallory", key, certificate, [foreign_ca.certificate], BestAvailableEncryption(PASSWORD.encode())
        )
    )
    browser = Browser.fresh(tmp_path / "mallory", server.ca_file)
    browser.import_pkcs12(bundle, PASSWORD)
    browser.auto_select(server.url, filters=[{"ISSUER": {"CN": "foreign CA"}}])
    requests_before = server.log().count("GET /whoami")
    page = browser.dump_dom(f"{server.url}/whoami")
    assert page.strip() == "", page[-1500:]  # no page at all: neither ours nor a JSON body
    assert "Page load failed: net::ERR_" in browser.last_stderr, browser.last_stderr[-1500:]
    assert server.log().count("GET /whoami") == requests_before  # no request ever reached the app
