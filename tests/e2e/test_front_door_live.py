"""The front door of a real `pocketca serve` over TLS: Strict-Transport-Security on HTTPS answers and never on the
plain-HTTP listener; failed bearer tokens throttled (429 + Retry-After) and counted in /metrics; the token and
EAB answers not cacheable; the console's cookies under `__Host-` names."""

from __future__ import annotations

import re

import httpx

from service.client import build_client_context
from tests.conftest import LiveServer

WRONG = {"Authorization": "Bearer pca_0123456789abcdef_not-the-secret"}


def test_hsts_on_https_answers_only(live_server: LiveServer) -> None:
    host = {"Host": f"ca.example.test:{live_server.port}"}  # a name, as a browser would send it (SNI: localhost)
    with live_server.client() as https, httpx.Client(base_url=live_server.http_url, timeout=15) as plain:
        for path in ["/ui/login", "/healthz", "/ca", "/crl"]:
            assert https.get(path, headers=host).headers["strict-transport-security"] == "max-age=31536000"
            assert "strict-transport-security" not in plain.get(path, headers=host).headers  # RFC 6797 7.2
        assert "strict-transport-security" not in https.get("/healthz").headers  # Host: localhost


def test_secrets_are_not_cached_and_console_cookies_are_host_only(live_server: LiveServer) -> None:
    admin = {"Authorization": f"Bearer {live_server.admin_token}"}
    with live_server.client() as https:
        for path in ["/tokens", "/acme/eab"]:
            response = https.post(path, json={}, headers=admin)
            assert response.status_code == 201 and response.headers["cache-control"] == "no-store"
        cookie = https.get("/ui/login").headers["set-cookie"]
        assert cookie.startswith("__Host-pocketca_login=") and "Path=/;" in cookie and "Domain" not in cookie


def from_address(server: LiveServer, address: str) -> httpx.Client:
    """A client whose connections leave from `address` (any of 127/8 reaches the service on 127.0.0.1)."""
    context = build_client_context(server.ca_file)
    transport = httpx.HTTPTransport(verify=context, local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, timeout=15)


def test_failed_tokens_are_throttled_per_address_and_counted(live_server: LiveServer) -> None:
    admin = {"Authorization": f"Bearer {live_server.admin_token}"}
    with from_address(live_server, "127.0.0.3") as attacker, from_address(live_server, "127.0.0.4") as other:
        statuses = [attacker.get("/certs", headers=WRONG).status_code for _ in range(12)]
        assert statuses == [401] * 10 + [429] * 2
        refused = attacker.get("/certs", headers=admin)  # the same address: refused before the token is read
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["content-type"] == "application/problem+json"
        assert other.get("/certs", headers=admin).status_code == 200
        text = other.get("/metrics", headers=admin).text
    assert re.search(r'^pocketca_auth_failures_total\{kind="bearer token"\} 10\.0$', text, re.M), text[-1500:]
    assert re.search(r'^pocketca_auth_throttled_total\{kind="bearer token"\} 3\.0$', text, re.M), text[-1500:]
