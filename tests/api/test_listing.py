"""GET /certs: filters, a stable newest-first order, and cursor paging."""

from __future__ import annotations

import datetime as dt

import pytest

from service.authority import Authority
from service.settings import Settings
from tests.api.conftest import bearer
from tests.conftest import ApiClient, authority_at
from tests.helpers import p256

pytestmark = pytest.mark.anyio


@pytest.fixture
def population(settings: Settings, authority: Authority, admin_token: str) -> dict[str, list[str]]:
    """7 valid (3 alice, 4 bob), 2 revoked alice, 2 expired carol; plus the server's own certificate."""
    admin = authority.authenticate_token(admin_token)
    serials: dict[str, list[str]] = {"valid": [], "revoked": [], "expired": [], "alice": []}
    for index in range(7):
        cn = "alice" if index < 3 else "bob"
        serial = authority.issue_for_key(p256().public_key(), cn=cn, sans=[], validity_days=10 + index).summary.serial
        serials["valid"].append(serial)
        if cn == "alice":
            serials["alice"].append(serial)
    for _ in range(2):
        serial = authority.issue_for_key(p256().public_key(), cn="alice", sans=[]).summary.serial
        authority.revoke(serial, reason="superseded", caller=admin)
        serials["revoked"].append(serial)
        serials["alice"].append(serial)
    past = authority_at(settings, dt.datetime.now(dt.UTC) - dt.timedelta(days=40))
    for _ in range(2):
        serials["expired"].append(
            past.issue_for_key(p256().public_key(), cn="carol", sans=[], validity_days=1).summary.serial
        )
    past.close()
    return serials


async def _all(api: ApiClient, token: str, **params: object) -> list[dict[str, object]]:
    response = await api.http.get("/certs", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_filters(api: ApiClient, admin_token: str, population: dict[str, list[str]]) -> None:
    alice = await _all(api, admin_token, cn="alice")
    assert {i["serial"] for i in alice} == set(population["alice"])
    revoked = await _all(api, admin_token, status="revoked")
    assert {i["serial"] for i in revoked} == set(population["revoked"])
    assert all(i["revocation_reason"] == "superseded" and i["revoked_at"] for i in revoked)
    expired = await _all(api, admin_token, status="expired")
    assert {i["serial"] for i in expired} == set(population["expired"])
    valid = {i["serial"] for i in await _all(api, admin_token, status="valid")}
    assert set(population["valid"]) <= valid and not valid & set(population["expired"] + population["revoked"])
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=12, hours=1)
    expiring = await _all(api, admin_token, expires_before=soon.isoformat(), status="valid")
    assert {i["serial"] for i in expiring} == set(population["valid"][:3])  # 10, 11, 12 days
    both = await _all(api, admin_token, cn="alice", status="revoked")
    assert {i["serial"] for i in both} == set(population["revoked"])


async def test_cursor_paging_is_stable_and_complete(
    api: ApiClient, admin_token: str, population: dict[str, list[str]]
) -> None:
    everything = await _all(api, admin_token, limit=1000)
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        params: dict[str, object] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.http.get("/certs", params=params, headers=bearer(admin_token))).json()
        assert len(page["items"]) <= 3
        seen += [i["serial"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["serial"] for i in everything]  # same order, nothing twice, nothing missed
    assert len(seen) == 12  # 11 made here + the service's own TLS certificate
    assert "certificate" not in everything[0]  # listings carry no PEM


@pytest.mark.parametrize(
    "params",
    [
        {"status": "weird"},
        {"limit": 0},
        {"limit": 1001},
        {"cursor": "bm9wZQ"},
        {"cursor": "!!"},
        {"expires_before": "tomorrow"},
        {"expires_before": "2030-01-01T00:00:00"},
    ],
)
async def test_bad_parameters(api: ApiClient, admin_token: str, params: dict[str, object]) -> None:
    response = await api.http.get("/certs", params=params, headers=bearer(admin_token))
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"
