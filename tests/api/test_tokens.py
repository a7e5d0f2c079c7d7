"""API tokens: shown once, stored only as a hash; enrollment tokens bound to exactly their names; deletion."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import text

from service.authority import Authority
from service.settings import Settings
from tests.api.conftest import bearer
from tests.conftest import ApiClient
from tests.helpers import csr_pem, p256

pytestmark = pytest.mark.anyio
PROBLEM = "application/problem+json"


def split(token: str) -> tuple[str, str]:
    """`pca_<16 hex id>_<secret>` (the secret may itself hold underscores)."""
    match = re.fullmatch(r"pca_([0-9a-f]{16})_(.+)", token)
    assert match is not None, "token format"
    return match.group(1), match.group(2)


async def create(api: ApiClient, admin_token: str, **body: object) -> dict[str, object]:
    response = await api.http.post("/tokens", json=body, headers=bearer(admin_token))
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def listed(api: ApiClient, admin_token: str, token_id: object) -> dict[str, object]:
    response = await api.http.get("/tokens", headers=bearer(admin_token))
    assert response.status_code == 200
    (item,) = [i for i in response.json()["items"] if i["id"] == token_id]
    found: dict[str, object] = item
    return found


def csr(cn: str, sans: list[str] | None = None) -> dict[str, str]:
    return {"csr": csr_pem(p256(), cn, sans).decode()}


async def test_create_shows_the_secret_once_and_stores_only_its_hash(
    api: ApiClient, admin_token: str, authority: Authority, settings: Settings
) -> None:
    before = dt.datetime.now(dt.UTC)
    response = await api.http.post("/tokens", json={"scope": "read", "ttl_seconds": 3600}, headers=bearer(admin_token))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "id", "expires_at"}
    token_id, secret = split(body["token"])
    assert token_id == body["id"]
    expires_at = dt.datetime.fromisoformat(body["expires_at"])
    assert before + dt.timedelta(seconds=3590) <= expires_at <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3610)
    assert (await api.http.get("/certs", headers=bearer(body["token"]))).status_code == 200  # it works

    unlimited = await create(api, admin_token, scope="revoke")
    assert unlimited["expires_at"] is None

    listing = await api.http.get("/tokens", headers=bearer(admin_token))
    assert listing.status_code == 200
    assert secret not in listing.text and body["token"] not in listing.text
    assert secret_of(admin_token) not in listing.text
    item = await listed(api, admin_token, token_id)
    assert set(item) == {"id", "scope", "kind", "cn", "sans", "profile", "expires_at", "uses_left", "created_at"}
    assert (item["scope"], item["kind"], item["uses_left"], item["cn"]) == ("read", "read", None, None)

    with authority.db.reader() as session:
        rows = [dict(r._mapping) for r in session.execute(text("SELECT * FROM tokens"))]
    assert len(rows) == 3  # the bootstrap admin token and the two above
    for row in rows:
        assert all(secret not in str(value) for value in row.values())
        assert re.fullmatch(r"[0-9a-f]{64}", row["secret_hash"])
    (row,) = [r for r in rows if r["id"] == token_id]
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()

    # nor anywhere in the database files, journal included
    for path in settings.data_dir.glob("pocketca.db*"):
        data = path.read_bytes()
        assert secret.encode() not in data and secret_of(admin_token).encode() not in data, path


def secret_of(token: str) -> str:
    return split(token)[1]


async def test_enrollment_token_defaults(api: ApiClient, admin_token: str) -> None:
    created = await create(api, admin_token, cn="alice", sans=["alice.example.com"])
    item = await listed(api, admin_token, created["id"])
    assert item["scope"] == "issue"
    assert item["uses_left"] == 1
    assert (item["cn"], item["sans"], item["profile"]) == ("alice", ["alice.example.com"], None)
    expires_at = dt.datetime.fromisoformat(str(created["expires_at"]))
    assert expires_at == dt.datetime.fromisoformat(str(item["expires_at"]))
    assert abs(expires_at - (dt.datetime.now(dt.UTC) + dt.timedelta(hours=24))) < dt.timedelta(minutes=1)


@pytest.mark.parametrize(
    ("cn", "shown"),
    [("tab\there", "U+0009"), ("del\x7f", "U+007F"), ("evil\u202egro.example", "U+202E"), ("a\u200bb", "U+200B")],
    ids=["tab", "del", "rlo", "zwsp"],
)
async def test_an_enrollment_cn_with_control_characters_is_a_400(
    api: ApiClient, admin_token: str, cn: str, shown: str
) -> None:
    """No CSR could name such a CN."""
    response = await api.http.post("/tokens", json={"scope": "issue", "cn": cn}, headers=bearer(admin_token))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == f"the cn holds control or format characters ({shown})"


@pytest.mark.parametrize("cn", ["\x00", "web\x00.example.com"], ids=["nul", "inner-nul"])
async def test_an_enrollment_cn_with_a_nul_is_refused_at_the_edge(api: ApiClient, admin_token: str, cn: str) -> None:
    """Found by the fuzzer on PostgreSQL (which stores no NUL): a 500 then. Every JSON field refuses a NUL."""
    response = await api.http.post("/tokens", json={"scope": "issue", "cn": cn}, headers=bearer(admin_token))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "body.cn: Value error, holds a NUL character" in response.json()["detail"]


@pytest.mark.parametrize(
    ("cn", "sans", "problem"),
    [
        ("alice", ["alice.example.com", "extra.example.com"], "extra.example.com"),
        ("alice", [], "the token allows exactly the names"),
        ("bob", ["alice.example.com"], "the CN must be 'alice'"),
    ],
    ids=["extra-san", "missing-san", "other-cn"],
)
async def test_enrollment_token_issues_exactly_its_names(
    api: ApiClient, admin_token: str, cn: str, sans: list[str], problem: str
) -> None:
    token = str((await create(api, admin_token, cn="alice", sans=["alice.example.com"]))["token"])
    token_id = split(token)[0]

    refused = await api.http.post("/csr", json=csr(cn, sans), headers=bearer(token))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM
    assert any(problem in v for v in refused.json()["violations"]), refused.json()
    assert (await listed(api, admin_token, token_id))["uses_left"] == 1  # a refusal does not spend the use

    issued = await api.http.post("/csr", json=csr("alice", ["alice.example.com"]), headers=bearer(token))
    assert issued.status_code == 201, issued.text
    assert issued.json()["cn"] == "alice"
    assert sorted(issued.json()["sans"]) == ["alice", "alice.example.com"]
    assert (await listed(api, admin_token, token_id))["uses_left"] == 0

    again = await api.http.post("/csr", json=csr("alice", ["alice.example.com"]), headers=bearer(token))
    assert again.status_code == 401
    assert again.headers["content-type"] == PROBLEM


async def test_profile_bound_token(api: ApiClient, admin_token: str) -> None:
    token = str((await create(api, admin_token, scope="issue", profile="server"))["token"])
    refused = await api.http.post("/csr", json={**csr("web.example.com"), "profile": "client"}, headers=bearer(token))
    assert refused.status_code == 403
    assert "server" in refused.json()["detail"]

    issued = await api.http.post("/csr", json=csr("web.example.com"), headers=bearer(token))
    assert issued.status_code == 201, issued.text
    assert issued.json()["profile"] == "server"
    certificate = x509.load_pem_x509_certificate(issued.json()["certificate"].encode())
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]

    explicit = await api.http.post("/csr", json={**csr("web.example.com"), "profile": "server"}, headers=bearer(token))
    assert explicit.status_code == 201


async def test_delete_takes_effect_at_once(api: ApiClient, admin_token: str) -> None:
    created = await create(api, admin_token, scope="read")
    token = str(created["token"])
    assert (await api.http.get("/certs", headers=bearer(token))).status_code == 200
    deleted = await api.http.delete(f"/tokens/{created['id']}", headers=bearer(admin_token))
    assert deleted.status_code == 204
    assert deleted.content == b""
    after = await api.http.get("/certs", headers=bearer(token))
    assert after.status_code == 401
    assert after.headers["content-type"] == PROBLEM
    listing = await api.http.get("/tokens", headers=bearer(admin_token))
    assert created["id"] not in [i["id"] for i in listing.json()["items"]]

    again = await api.http.delete(f"/tokens/{created['id']}", headers=bearer(admin_token))
    assert again.status_code == 404
    unknown = await api.http.delete("/tokens/0123456789abcdef", headers=bearer(admin_token))
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM


BAD_BODIES: list[tuple[dict[str, object], int]] = [
    ({"scope": "superuser"}, 422),
    ({"scope": "read", "uses": 0}, 422),
    ({"scope": "read", "ttl_seconds": 0}, 422),
    ({"scope": "read", "surprise": True}, 422),
    ({"scope": "admin", "cn": "alice"}, 400),
    ({"scope": "read", "cn": "alice", "sans": ["alice.example.com"]}, 400),
    ({"sans": ["alice.example.com"]}, 400),  # an enrollment token needs a cn
    ({"scope": "issue", "profile": "nosuch"}, 400),
    ({"cn": "alice", "sans": ["not a name"]}, 400),
    ({"cn": "alice", "sans": ["ftp://"]}, 400),
]


async def test_bad_bodies_are_problems(api: ApiClient, admin_token: str, authority: Authority) -> None:
    before = len(authority.list_tokens(caller=authority.authenticate_token(admin_token)))
    for body, status in BAD_BODIES:
        response = await api.http.post("/tokens", json=body, headers=bearer(admin_token))
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert {"type", "title", "status", "detail"} <= response.json().keys()
    assert len(authority.list_tokens(caller=authority.authenticate_token(admin_token))) == before  # none made
