"""Every error is problem+json; nothing leaks a traceback."""

from __future__ import annotations

import logging

import httpx
import pytest

from service.app import create_app
from service.authority import Authority
from tests.conftest import ApiClient

pytestmark = pytest.mark.anyio


def _is_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]


async def test_unknown_route_is_404_problem(api: ApiClient) -> None:
    _is_problem(await api.http.get("/nope"), 404)


async def test_wrong_method_is_405_problem(api: ApiClient) -> None:
    response = await api.http.delete("/csr")
    _is_problem(response, 405)
    assert "POST" in response.headers["allow"]


@pytest.mark.parametrize(
    ("path", "allow"),
    [("/tokens", "GET, POST"), ("/tokens/abc", "DELETE"), ("/certs", "GET"), ("/csr", "POST"), ("/ocsp", "POST")],
)
async def test_a_405_allows_every_method_of_the_path(api: ApiClient, path: str, allow: str) -> None:
    """Two routes serve /tokens (GET and POST): the 405 names both, not only the first route's (RFC 9110 15.5.6)."""
    response = await api.http.put(path)
    _is_problem(response, 405)
    assert response.headers["allow"] == allow


async def test_unexpected_error_is_generic_500(authority: Authority, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(authority=authority)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="pocketca.error"):
        async with httpx.AsyncClient(transport=transport, base_url="https://t") as http:
            response = await http.get("/boom")
    _is_problem(response, 500)
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert any("secret internals" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)  # logged with cause


async def test_health_is_503_when_the_database_is_gone(api: ApiClient, authority: Authority) -> None:
    assert (await api.http.get("/healthz")).status_code == 200
    with authority.db.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE counters")
    _is_problem(await api.http.get("/healthz"), 503)


async def test_validation_errors_do_not_echo_input(api: ApiClient, admin_token: str) -> None:
    response = await api.http.post(
        "/csr", json={"csr": "x", "password": "hunter2-secret"}, headers={"Authorization": f"Bearer {admin_token}"}
    )
    _is_problem(response, 422)
    assert "hunter2-secret" not in response.text


async def test_problem_types_are_readable_slugs(api, admin_token: str) -> None:  # type: ignore[no-untyped-def]
    from tests.api.conftest import bearer

    response = await api.http.post("/csr", json={"csr": "not a csr"}, headers=bearer(admin_token))
    assert response.status_code == 400
    assert response.json()["type"] == "urn:pocketca:problem:invalid-csr"
    too_big = await api.http.post("/csr", content=b"x" * (65 * 1024), headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413
    assert too_big.json()["type"] == "urn:pocketca:problem:payload-too-large"
    invalid = await api.http.get("/certs", params={"limit": 0}, headers=bearer(admin_token))
    assert invalid.status_code == 422
    body = invalid.json()
    assert body["type"] == "urn:pocketca:problem:validation" and body["errors"][0]["loc"] == ["query", "limit"]
