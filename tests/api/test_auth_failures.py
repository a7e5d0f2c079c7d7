"""Failed bearer tokens and console logins: throttled per client address (429 + Retry-After, before the token is
looked at), audited in aggregate (one row per address and window, with the address, never one per request),
counted in /metrics. And the answers that carry a secret are never cached."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from service.app import create_app
from service.authority import Authority
from service.datadir.build import build_authority
from service.settings import Settings
from tests.api.conftest import bearer
from tests.conftest import query
from tests.helpers import csr_pem, p256

pytestmark = pytest.mark.anyio

WRONG = "pca_0123456789abcdef_not-the-secret"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')

Client = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def client_from(authority: Authority) -> AsyncIterator[Client]:
    """httpx clients of one app, each from the client address it is given."""
    app = create_app(authority=authority)
    opened: list[httpx.AsyncClient] = []

    def make(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 50000))
        opened.append(httpx.AsyncClient(transport=transport, base_url="https://testserver"))
        return opened[-1]

    yield make
    for http in opened:
        await http.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def failure_rows(settings: Settings) -> list[tuple[object, ...]]:
    return query(
        settings.data_dir,
        "SELECT action, outcome, actor, token_id, serial, client_address, detail FROM audit_events"
        " WHERE action = 'auth.failure' ORDER BY id",
    )


async def test_ten_failed_tokens_then_429_with_retry_after_even_for_a_good_token(
    client_from: Client, admin_token: str
) -> None:
    attacker = client_from("203.0.113.7")
    for _ in range(10):
        assert (await attacker.get("/certs", headers=bearer(WRONG))).status_code == 401
    refused = await attacker.get("/certs", headers=bearer(admin_token))  # refused before the token is looked at
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "too many failed" in refused.json()["detail"]
    assert refused.json()["type"] == "urn:pocketca:problem:rate-limited"
    # a renewal token or a malformed header from there: refused alike
    assert (await attacker.post("/csr", headers={"Authorization": "Bearer a.b.c"})).status_code == 429
    # another address is not concerned; nor are requests without credentials from the same one
    assert (await client_from("203.0.113.8").get("/certs", headers=bearer(admin_token))).status_code == 200
    assert (await attacker.get("/ca")).status_code == 200


async def test_a_known_token_expired_or_used_up_is_no_guess_and_is_not_counted(
    authority: Authority, client_from: Client, admin_token: str
) -> None:
    """A pipeline retrying its spent enrollment token must not lock its address (a CI host, a NAT) out."""
    client = client_from("198.51.100.77")
    used = authority.create_token(cn="ci-job", sans=["ci-job.example"], uses=1).token
    body = {"csr": csr_pem(p256(), "ci-job", ["ci-job.example"]).decode()}
    assert (await client.post("/csr", json=body, headers=bearer(used))).status_code == 201
    for _ in range(15):
        response = await client.post("/csr", json=body, headers=bearer(used))
        assert response.status_code == 401 and "used up" in response.json()["detail"]
        assert response.json()["type"] == "urn:pocketca:problem:authentication"
    assert (await client.get("/certs", headers=bearer(admin_token))).status_code == 200
    wrong = await client.get("/certs", headers=bearer(WRONG))  # an unknown token still is a failure, and says so
    assert wrong.status_code == 401 and wrong.json()["type"] == "urn:pocketca:problem:authentication"


async def test_an_ipv6_address_is_throttled_by_its_64(client_from: Client) -> None:
    for host in range(10):
        response = await client_from(f"2001:db8:1:2::{host + 1:x}").get("/certs", headers=bearer(WRONG))
        assert response.status_code == 401
    assert (await client_from("2001:db8:1:2:ffff::9").get("/certs", headers=bearer(WRONG))).status_code == 429
    assert (await client_from("2001:db8:1:3::1").get("/certs", headers=bearer(WRONG))).status_code == 401


async def test_the_window_ends_and_the_address_may_try_again(authority: Authority, client_from: Client) -> None:
    clock = Clock()
    authority.failures.monotonic = clock
    attacker = client_from("198.51.100.1")
    for _ in range(10):
        await attacker.get("/certs", headers=bearer(WRONG))
    assert (await attacker.get("/certs", headers=bearer(WRONG))).status_code == 429
    clock.now += 59
    response = await attacker.get("/certs", headers=bearer(WRONG))
    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    clock.now += 1
    assert (await attacker.get("/certs", headers=bearer(WRONG))).status_code == 401


async def test_failures_are_audited_as_one_row_per_address_and_window(
    authority: Authority, settings: Settings, client_from: Client
) -> None:
    clock = Clock()
    authority.failures.monotonic = clock
    attacker, other = client_from("192.0.2.10"), client_from("192.0.2.11")
    for _ in range(50):
        await attacker.get("/certs", headers=bearer(WRONG))
    for _ in range(3):
        await other.get("/tokens", headers={"Authorization": "Basic xyz"})
    assert authority.failures.flush() == 0  # the windows are still open: nothing written yet
    assert failure_rows(settings) == []
    clock.now += 61
    assert authority.failures.flush() == 2
    rows = failure_rows(settings)
    assert len(rows) == 2, rows
    by_address = {row[5]: row for row in rows}
    action, outcome, actor, token_id, serial, _, detail = by_address["192.0.2.10"]
    assert (action, outcome, actor, token_id, serial) == ("auth.failure", "refused", "unauthenticated", None, None)
    assert re.fullmatch(r"10 failed bearer token from \S+Z to \S+Z; 40 attempts refused \(429\)", str(detail)), detail
    assert re.fullmatch(r"3 failed bearer token from \S+Z to \S+Z", str(by_address["192.0.2.11"][6]))
    assert WRONG not in str(rows) and "not-the-secret" not in str(rows)  # never the credential
    assert authority.failures.flush() == 0


async def test_the_last_windows_are_written_when_the_service_stops(settings: Settings, prepared: object) -> None:
    authority = build_authority(settings)
    for _ in range(4):
        authority.failures.failed("192.0.2.99", "console login")
    authority.close()
    rows = failure_rows(settings)
    assert [(r[5], str(r[6]).split(" from ")[0]) for r in rows] == [("192.0.2.99", "4 failed console login")]


async def test_failed_console_logins_are_throttled_and_audited(
    authority: Authority, settings: Settings, client_from: Client, admin_token: str
) -> None:
    browser = client_from("192.0.2.20")
    for _ in range(10):
        page = await browser.get("/ui/login")
        csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        response = await browser.post("/ui/login", data={"csrf": csrf, "token": WRONG})
        assert response.status_code == 401
    page = await browser.get("/ui/login")
    csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    response = await browser.post("/ui/login", data={"csrf": csrf, "token": admin_token})
    assert response.status_code == 429
    assert response.headers["content-type"].startswith("text/html") and "too many failed" in response.text
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert "__Host-pocketca_session" not in browser.cookies
    assert authority.failures.flush(everything=True) == 1
    [row] = failure_rows(settings)
    assert row[5] == "192.0.2.20" and str(row[6]).startswith("10 failed console login from ")
    assert str(row[6]).endswith("; 1 attempts refused (429)")


async def test_failures_and_refusals_are_counted_in_metrics(client_from: Client, admin_token: str) -> None:
    scraper = client_from("192.0.2.30")

    async def counts() -> dict[str, float]:
        text = (await scraper.get("/metrics", headers=bearer(admin_token))).text
        found = re.findall(r'^pocketca_auth_(failures|throttled)_total\{kind="([^"]+)"\} (\S+)$', text, re.M)
        return {f"{metric}/{kind}": float(value) for metric, kind, value in found}

    before = await counts()
    attacker = client_from("192.0.2.31")
    for _ in range(12):
        await attacker.get("/certs", headers=bearer(WRONG))
    after = await counts()
    assert after["failures/bearer token"] - before.get("failures/bearer token", 0) == 10
    assert after["throttled/bearer token"] - before.get("throttled/bearer token", 0) == 2


async def test_zero_turns_the_throttle_off_but_not_the_audit(
    authority: Authority, settings: Settings, client_from: Client
) -> None:
    authority.failures.limit = 0  # POCKETCA_AUTH_FAILURES_PER_MINUTE=0
    attacker = client_from("192.0.2.40")
    for _ in range(30):
        assert (await attacker.get("/certs", headers=bearer(WRONG))).status_code == 401
    authority.failures.flush(everything=True)
    assert str(failure_rows(settings)[0][6]).startswith("30 failed bearer token")


@pytest.mark.parametrize(("path", "body"), [("/tokens", {"scope": "read"}), ("/acme/eab", {})])
async def test_answers_holding_a_secret_are_never_stored(
    client_from: Client, admin_token: str, path: str, body: dict[str, str]
) -> None:
    response = await client_from("192.0.2.50").post(path, json=body, headers=bearer(admin_token))
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
