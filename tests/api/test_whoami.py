"""GET /whoami: identity from the client certificate (played here; the real handshake is in tests/e2e)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from service.authority import Authority
from tests.api.conftest import Holder
from tests.conftest import ApiClient
from tests.helpers import ForeignCA

pytestmark = pytest.mark.anyio


async def test_identity_of_the_presented_certificate(api: ApiClient, issue_holder) -> None:  # type: ignore[no-untyped-def]
    holder: Holder = issue_holder("alice", ["alice@example.com"])
    api.as_peer(holder.der)
    response = await api.http.get("/whoami")
    assert response.status_code == 200
    assert response.json() == {
        "cn": "alice",
        "subject": "CN=alice",
        "serial": holder.serial,
        "sans": ["alice@example.com", "alice"],
        "issuer": "CN=pocketca root CA",
        "not_before": holder.certificate.not_valid_before_utc.isoformat().replace("+00:00", "Z"),
        "not_after": holder.certificate.not_valid_after_utc.isoformat().replace("+00:00", "Z"),
        "fingerprint_sha256": holder.certificate.fingerprint(hashes.SHA256()).hex(),
    }


async def test_no_certificate_is_401(api: ApiClient) -> None:
    response = await api.http.get("/whoami")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_bearer_token_is_not_an_identity(api: ApiClient, admin_token: str) -> None:
    response = await api.http.get("/whoami", headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code == 401


async def test_revoked_is_403_at_once(api: ApiClient, issue_holder, authority: Authority, admin_token: str) -> None:  # type: ignore[no-untyped-def]
    holder: Holder = issue_holder("alice")
    api.as_peer(holder.der)
    assert (await api.http.get("/whoami")).status_code == 200
    authority.revoke(holder.serial, reason="keyCompromise", caller=authority.authenticate_token(admin_token))
    response = await api.http.get("/whoami")
    assert response.status_code == 403
    assert holder.serial in response.json()["detail"]


async def test_server_only_certificate_is_403(api: ApiClient, issue_holder) -> None:  # type: ignore[no-untyped-def]
    holder: Holder = issue_holder("web.internal", profile="server")
    api.as_peer(holder.der)
    assert (await api.http.get("/whoami")).status_code == 403


async def test_certificate_we_did_not_issue_is_403(api: ApiClient, foreign_ca: ForeignCA) -> None:
    _, certificate = foreign_ca.issue_client("alice")
    api.as_peer(certificate.public_bytes(Encoding.DER))
    assert (await api.http.get("/whoami")).status_code == 403


async def test_unreadable_certificate_is_401(api: ApiClient) -> None:
    api.as_peer(b"\x30\x03\x02\x01\x01")
    assert (await api.http.get("/whoami")).status_code == 401
