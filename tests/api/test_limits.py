"""Request limits: head size (431), body size (413), body time (408), SANs per CSR, issuances per token (429)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from service.app import create_app
from service.authority import Authority
from service.http.limits import Limits
from tests.api.conftest import bearer
from tests.conftest import ApiClient
from tests.helpers import csr_pem, p256

pytestmark = pytest.mark.anyio


async def test_request_head_over_the_limit_is_431(api: ApiClient) -> None:
    response = await api.http.get("/healthz", headers={"X-Padding": "a" * 17_000})
    assert response.status_code == 431
    assert response.headers["content-type"] == "application/problem+json"
    assert (await api.http.get("/healthz", headers={"X-Padding": "a" * 8_000})).status_code == 200


async def test_slow_body_is_408(authority: Authority, admin_token: str) -> None:
    app = create_app(authority=authority, limits=Limits(body_timeout=0.3))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"csr": "'
        await asyncio.sleep(1.0)
        yield b'"}'

    async with httpx.AsyncClient(transport=transport, base_url="https://t") as http:
        response = await http.post(
            "/csr", content=trickle(), headers={**bearer(admin_token), "Content-Type": "application/json"}
        )
    assert response.status_code == 408
    assert response.headers["connection"] == "close"


async def test_too_many_sans_for_the_profile(api: ApiClient, admin_token: str) -> None:
    names = [f"n{i}.example.com" for i in range(101)]
    response = await api.http.post(
        "/csr", json={"csr": csr_pem(p256(), "x.example.com", names).decode()}, headers=bearer(admin_token)
    )
    assert response.status_code == 403
    assert "at most 100 SANs" in response.json()["detail"]


async def test_issuance_rate_per_token_is_429_with_retry_after(
    api: ApiClient, authority: Authority, admin_token: str
) -> None:
    authority.issue_rate_per_minute = 3
    token = authority.create_token(scope="issue").token
    statuses = []
    for _ in range(4):
        response = await api.http.post("/csr", json={"csr": csr_pem(p256(), "a").decode()}, headers=bearer(token))
        statuses.append(response.status_code)
    assert statuses == [201, 201, 201, 429]
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["content-type"] == "application/problem+json"
    # the limit is per token: another token still issues
    other = await api.http.post("/csr", json={"csr": csr_pem(p256(), "a").decode()}, headers=bearer(admin_token))
    assert other.status_code == 201
