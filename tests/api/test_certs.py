"""Reading and revoking certificates; who may do which."""

from __future__ import annotations

import pytest
from cryptography import x509

from service.authority import Authority
from tests.api.conftest import Holder, bearer, enroll
from tests.conftest import ApiClient

pytestmark = pytest.mark.anyio


async def test_admin_reads_json_and_pem(api: ApiClient, admin_token: str, authority: Authority) -> None:
    holder = await enroll(api, admin_token, "alice")
    response = await api.http.get(f"/certs/{holder.serial}", headers=bearer(admin_token))
    assert response.status_code == 200
    data = response.json()
    assert data["serial"] == holder.serial and data["status"] == "valid" and data["profile"] == "client"
    assert data["revoked_at"] is None and data["issuer"] == "CN=pocketca root CA"
    assert x509.load_pem_x509_certificate(data["certificate"].encode()) == holder.certificate

    pem = await api.http.get(
        f"/certs/{holder.serial}", headers={**bearer(admin_token), "Accept": "application/pem-certificate-chain"}
    )
    assert x509.load_pem_x509_certificates(pem.content) == [holder.certificate, authority.ca_certificate]


@pytest.mark.parametrize(
    "spelling", [str.upper, lambda s: ":".join(s[i : i + 2] for i in range(0, len(s), 2)), lambda s: "0x" + s]
)
async def test_serial_spellings_accepted(api: ApiClient, admin_token: str, spelling) -> None:  # type: ignore[no-untyped-def]
    holder = await enroll(api, admin_token, "alice")
    response = await api.http.get(f"/certs/{spelling(holder.serial)}", headers=bearer(admin_token))
    assert response.status_code == 200
    assert response.json()["serial"] == holder.serial


@pytest.mark.parametrize(("serial", "status"), [("abcdef0123", 404), ("not-hex", 400), ("f" * 41, 400)])
async def test_unknown_and_malformed_serials(api: ApiClient, admin_token: str, serial: str, status: int) -> None:
    response = await api.http.get(f"/certs/{serial}", headers=bearer(admin_token))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


async def test_who_may_read(api: ApiClient, admin_token: str, authority: Authority, issue_holder) -> None:  # type: ignore[no-untyped-def]
    alice: Holder = issue_holder("alice")
    bob: Holder = issue_holder("bob")
    read = authority.create_token(scope="read").token
    issue = authority.create_token(scope="issue").token
    assert (await api.http.get(f"/certs/{alice.serial}", headers=bearer(read))).status_code == 200
    assert (await api.http.get(f"/certs/{alice.serial}", headers=bearer(issue))).status_code == 403
    assert (await api.http.get(f"/certs/{alice.serial}")).status_code == 401
    api.as_peer(alice.der)
    assert (await api.http.get(f"/certs/{alice.serial}")).status_code == 200
    assert (await api.http.get(f"/certs/{bob.serial}")).status_code == 403


async def test_admin_revokes_with_reason_then_conflict(api: ApiClient, admin_token: str) -> None:
    holder = await enroll(api, admin_token, "alice")
    response = await api.http.post(
        f"/certs/{holder.serial}/revoke", json={"reason": "keyCompromise"}, headers=bearer(admin_token)
    )
    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert response.json()["revocation_reason"] == "keyCompromise"
    again = await api.http.post(f"/certs/{holder.serial}/revoke", headers=bearer(admin_token))
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


async def test_revoke_defaults_to_unspecified_and_refuses_unknown_reasons(api: ApiClient, admin_token: str) -> None:
    holder = await enroll(api, admin_token, "alice")
    bad = await api.http.post(f"/certs/{holder.serial}/revoke", json={"reason": "bored"}, headers=bearer(admin_token))
    assert bad.status_code == 400
    ok = await api.http.post(f"/certs/{holder.serial}/revoke", headers=bearer(admin_token))
    assert ok.status_code == 200 and ok.json()["revocation_reason"] == "unspecified"
    missing = await api.http.post("/certs/abc123/revoke", headers=bearer(admin_token))
    assert missing.status_code == 404


async def test_who_may_revoke(api: ApiClient, authority: Authority, issue_holder) -> None:  # type: ignore[no-untyped-def]
    alice: Holder = issue_holder("alice")
    bob: Holder = issue_holder("bob")
    carol: Holder = issue_holder("carol")
    read = authority.create_token(scope="read").token
    revoke = authority.create_token(scope="revoke").token
    assert (await api.http.post(f"/certs/{alice.serial}/revoke", headers=bearer(read))).status_code == 403
    assert (await api.http.post(f"/certs/{alice.serial}/revoke")).status_code == 401
    assert (await api.http.post(f"/certs/{carol.serial}/revoke", headers=bearer(revoke))).status_code == 200
    api.as_peer(alice.der)
    assert (await api.http.post(f"/certs/{bob.serial}/revoke")).status_code == 403
    assert (await api.http.post(f"/certs/{alice.serial}/revoke")).status_code == 200
    # once revoked, the holder's certificate is no longer a credential at all
    assert (await api.http.get(f"/certs/{alice.serial}")).status_code == 403


async def test_expired_status(api: ApiClient, settings, admin_token: str) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from tests.conftest import authority_at
    from tests.helpers import p256

    past = authority_at(settings, dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    issued = past.issue_for_key(p256().public_key(), cn="old", sans=[], validity_days=1)
    past.close()
    response = await api.http.get(f"/certs/{issued.summary.serial}", headers=bearer(admin_token))
    assert response.json()["status"] == "expired"
