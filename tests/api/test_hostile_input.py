"""Hostile input to the REST API is a 4xx problem, never a 500 (nor, on PostgreSQL, which stores no NUL, a 503):
JSON nested deeper than any of our documents, a renewal token whose JWS header or claims nest 9,000 deep, a NUL
or a lone surrogate in a JSON field, a NUL anywhere in a path or a query, and an `expires_before` that UTC takes
out of the years 1 to 9999. Run on SQLite and on PostgreSQL (POCKETCA_TEST_DATABASE_URL)."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from service.authority import Authority
from tests.api.conftest import bearer
from tests.conftest import ApiClient
from tests.helpers import csr_pem, p256

pytestmark = pytest.mark.anyio

DEEP = b"[" * 20_000
PROBLEM = "application/problem+json"


def assert_problem(response: object, status: int, says: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == PROBLEM  # type: ignore[attr-defined]
    document: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert says in str(document["detail"]), document
    return document


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/csr"),
        ("POST", "/tokens"),
        ("POST", "/pkcs12"),
        ("POST", "/certs/01/revoke"),
        ("POST", "/acme/eab"),
    ],
)
@pytest.mark.parametrize("content_type", ["application/json", "application/merge-patch+json", None])
async def test_json_nested_20000_deep_is_refused_at_the_edge(
    api: ApiClient, admin_token: str, method: str, path: str, content_type: str | None
) -> None:
    headers = bearer(admin_token) | ({"Content-Type": content_type} if content_type else {})
    response = await api.http.request(method, path, content=DEEP, headers=headers)
    assert_problem(response, 400, "deeper than 32 levels")


async def test_json_just_within_the_depth_limit_reaches_the_handler(api: ApiClient, admin_token: str) -> None:
    nested = b'{"sans": ' + b"[" * 31 + b"]" * 31 + b"}"  # 32 levels: the schema refuses it, not the edge
    response = await api.http.post(
        "/tokens", content=nested, headers=bearer(admin_token) | {"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text


def _renewal_token(authority: Authority, header_json: bytes | None, claims_json: bytes) -> str:
    """A compact JWS signed by a real server certificate's key, with any header and claims bytes."""
    key = p256()
    issued = authority.issue_for_key(key.public_key(), cn="web.internal", sans=["web.internal"], profile="server")
    x5c = base64.b64encode(issued.certificate.public_bytes(Encoding.DER)).decode()
    header = header_json if header_json is not None else json.dumps({"alg": "ES256", "x5c": [x5c]}).encode()
    signing_input = f"{b64url(header)}.{b64url(claims_json)}".encode()
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return f"{signing_input.decode()}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@pytest.mark.parametrize("part", ["header", "claims"])
async def test_a_renewal_token_nested_9000_deep_is_a_401(api: ApiClient, authority: Authority, part: str) -> None:
    deep = b"[" * 9_000
    token = _renewal_token(authority, deep, b"{}") if part == "header" else _renewal_token(authority, None, deep)
    response = await api.http.post(
        "/csr", json={"csr": csr_pem(p256(), "web.internal").decode()}, headers=bearer(token)
    )
    assert_problem(response, 401, "renewal token")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/tokens", {"cn": "web\x00.example"}),
        ("/tokens", {"scope": "issue", "cn": "web", "sans": ["a.example", "b\x00.example"]}),
        ("/tokens", {"profile": "client\x00"}),
        ("/pkcs12", {"cn": "alice", "password": "correct\x00horse battery"}),
        ("/pkcs12", {"cn": "al\x00ice", "password": "correct horse battery"}),
        ("/certs/01/revoke", {"reason": "keyCompromise\x00"}),
        ("/acme/eab", {"profile": "server\x00"}),
    ],
    ids=["token-cn", "token-san", "token-profile", "pkcs12-password", "pkcs12-cn", "revoke-reason", "eab-profile"],
)
async def test_a_nul_in_any_json_field_is_a_422_naming_the_field(
    api: ApiClient, admin_token: str, path: str, body: dict[str, object]
) -> None:
    response = await api.http.post(path, json=body, headers=bearer(admin_token))
    document = assert_problem(response, 422, "NUL")
    field = next(k for k, v in body.items() if "\x00" in json.dumps(v).replace("\\u0000", "\x00"))
    assert field in str(document["detail"])


async def test_a_nul_in_the_csr_json_fields_is_a_422(api: ApiClient, admin_token: str) -> None:
    body = {"csr": csr_pem(p256(), "alice").decode(), "profile": "cli\x00ent"}
    assert_problem(await api.http.post("/csr", json=body, headers=bearer(admin_token)), 422, "NUL")


async def test_a_lone_surrogate_in_a_json_field_is_a_4xx_not_a_500(api: ApiClient, admin_token: str) -> None:
    for body in [b'{"cn": "web\\ud800"}', b'{"\\udfff": 1}', b'{"cn": "a", "sans": ["\\ud800.example"]}']:
        response = await api.http.post(
            "/tokens", content=body, headers=bearer(admin_token) | {"Content-Type": "application/json"}
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/tokens/%00"),
        ("GET", "/certs?cn=a%00b"),
        ("GET", "/certs/%00"),
        ("POST", "/certs/01%00/revoke"),
        ("GET", "/audit?cursor=%00"),
        ("GET", "/certs?status=valid&cursor=ab%00"),
    ],
)
async def test_a_nul_in_a_path_or_query_is_a_400(api: ApiClient, admin_token: str, method: str, path: str) -> None:
    response = await api.http.request(method, path, headers=bearer(admin_token))
    assert_problem(response, 400, "NUL")


async def test_a_nul_is_refused_before_authentication(api: ApiClient) -> None:
    assert_problem(await api.http.get("/certs?cn=%00"), 400, "NUL")


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00"])
async def test_expires_before_outside_the_utc_years_is_a_400(api: ApiClient, admin_token: str, when: str) -> None:
    response = await api.http.get("/certs", params={"expires_before": when}, headers=bearer(admin_token))
    assert_problem(response, 400, "outside the years 1 to 9999 in UTC")


async def test_expires_before_at_the_edges_of_the_utc_years_still_lists(api: ApiClient, admin_token: str) -> None:
    for when in ["9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59+23:59", "0001-01-01T00:00:00-01:00"]:
        response = await api.http.get("/certs", params={"expires_before": when}, headers=bearer(admin_token))
        assert response.status_code == 200, (when, response.text)
