"""POST /csr through httpx.ASGITransport: formats, credentials, policy, limits."""

from __future__ import annotations

import json
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from service.authority import Authority
from service.db.models import CertificateRecord
from tests.api.conftest import Holder, bearer
from tests.conftest import ApiClient
from tests.helpers import csr_pem, p256

pytestmark = pytest.mark.anyio
PROBLEM = "application/problem+json"


def _eku(certificate: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


async def test_json_csr_is_signed_recorded_and_described(
    api: ApiClient, admin_token: str, authority: Authority
) -> None:
    key = p256()
    body = {"csr": csr_pem(key, "svc.example.com", ["svc.example.com", "10.0.0.7", "ops@example.com"]).decode()}
    response = await api.http.post("/csr", json=body, headers=bearer(admin_token))

    assert response.status_code == 201
    data = response.json()
    certificate = x509.load_pem_x509_certificate(data["certificate"].encode())
    assert response.headers["location"] == f"/certs/{data['serial']}"
    assert data["serial"] == format(certificate.serial_number, "x")
    assert data["cn"] == "svc.example.com" and data["subject"] == "CN=svc.example.com"
    assert data["sans"] == ["svc.example.com", "10.0.0.7", "ops@example.com"]
    assert data["profile"] == "client"
    assert certificate.public_key() == key.public_key()
    assert _eku(certificate) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    certificate.verify_directly_issued_by(authority.ca_certificate)
    assert data["chain"] == [authority.ca_certificate.public_bytes(Encoding.PEM).decode()]
    # committed before the response: a new session sees the row at once
    with authority.db.reader() as session:
        record = session.query(CertificateRecord).filter_by(serial=data["serial"]).one()
    assert record.der == certificate.public_bytes(Encoding.DER)


@pytest.mark.parametrize("encoding", [Encoding.PEM, Encoding.DER])
async def test_pkcs10_body_pem_and_der(api: ApiClient, admin_token: str, encoding: Encoding) -> None:
    csr = x509.load_pem_x509_csr(csr_pem(p256(), "web.internal"))
    headers = {**bearer(admin_token), "Content-Type": "application/pkcs10"}
    response = await api.http.post(
        "/csr", content=csr.public_bytes(encoding), headers=headers, params={"profile": "server"}
    )
    assert response.status_code == 201, response.text
    certificate = x509.load_pem_x509_certificate(response.json()["certificate"].encode())
    assert _eku(certificate) == [ExtendedKeyUsageOID.SERVER_AUTH]


async def test_peer_profile_has_both_usages(api: ApiClient, admin_token: str) -> None:
    body = {"csr": csr_pem(p256(), "node-1").decode(), "profile": "peer", "validity_days": 10}
    response = await api.http.post("/csr", json=body, headers=bearer(admin_token))
    certificate = x509.load_pem_x509_certificate(response.json()["certificate"].encode())
    assert set(_eku(certificate)) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert 10 * 86400 <= lifetime.total_seconds() <= 10 * 86400 + 600  # backdated by minutes only


async def test_pem_chain_on_request_leaf_first(api: ApiClient, admin_token: str, authority: Authority) -> None:
    headers = {**bearer(admin_token), "Accept": "application/pem-certificate-chain"}
    response = await api.http.post("/csr", json={"csr": csr_pem(p256(), "alice").decode()}, headers=headers)
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/pem-certificate-chain")
    chain = x509.load_pem_x509_certificates(response.content)
    assert len(chain) == 2 and chain[1] == authority.ca_certificate
    assert response.headers["location"] == f"/certs/{format(chain[0].serial_number, 'x')}"


@pytest.mark.parametrize(
    ("headers", "detail_part"),
    [
        ({}, "bearer token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
        ({"Authorization": "Bearer pca_0000000000000000_nope"}, "not valid"),
        ({"Authorization": "Bearer garbage"}, "not valid"),
    ],
)
async def test_missing_or_bad_credentials_get_401(api: ApiClient, headers: dict[str, str], detail_part: str) -> None:
    response = await api.http.post("/csr", json={"csr": csr_pem(p256(), "x").decode()}, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert detail_part in response.json()["detail"]


async def test_read_scope_may_not_issue(api: ApiClient, authority: Authority, admin_token: str) -> None:
    token = authority.create_token(scope="read").token
    response = await api.http.post("/csr", json={"csr": csr_pem(p256(), "x").decode()}, headers=bearer(token))
    assert response.status_code == 403
    issue_token = authority.create_token(scope="issue").token
    response = await api.http.post("/csr", json={"csr": csr_pem(p256(), "x").decode()}, headers=bearer(issue_token))
    assert response.status_code == 201


async def test_used_up_and_expired_tokens_get_401(api: ApiClient, authority: Authority, admin_token: str) -> None:
    import datetime as dt

    once = authority.create_token(scope="issue", uses=1).token
    authority.sign_csr(csr_pem(p256(), "x"), caller=authority.authenticate_token(once))
    short = authority.create_token(scope="issue", ttl=dt.timedelta(seconds=1)).token
    time.sleep(1.1)
    for token in (once, short):
        response = await api.http.post("/csr", json={"csr": csr_pem(p256(), "x").decode()}, headers=bearer(token))
        assert response.status_code == 401


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"not a csr", "application/pkcs10", 400),
        (b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "application/pkcs10", 400),
        (b"\x30\x82\x01", "application/pkcs10", 400),
        (json.dumps({"csr": "nope"}).encode(), "application/json", 400),
        (b"{not json", "application/json", 422),
        (json.dumps({"csr": "x", "surprise": 1}).encode(), "application/json", 422),
        (json.dumps({"profile": "client"}).encode(), "application/json", 422),
        (json.dumps({"csr": "x", "validity_days": "many"}).encode(), "application/json", 422),
        (b"csr=abc", "application/x-www-form-urlencoded", 415),
        (b"", "", 415),
    ],
)
async def test_bad_bodies_get_4xx_problems(
    api: ApiClient, admin_token: str, content: bytes, content_type: str, status: int
) -> None:
    headers = {**bearer(admin_token), "Content-Type": content_type}
    response = await api.http.post("/csr", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert {"type", "title", "status", "detail"} <= set(problem) and problem["status"] == status
    assert "Traceback" not in response.text


async def test_tampered_signature_is_400(api: ApiClient, admin_token: str) -> None:
    der = bytearray(x509.load_pem_x509_csr(csr_pem(p256(), "alice")).public_bytes(Encoding.DER))
    der[-5] ^= 0x01
    headers = {**bearer(admin_token), "Content-Type": "application/pkcs10"}
    response = await api.http.post("/csr", content=bytes(der), headers=headers)
    assert response.status_code == 400
    assert "signature" in response.json()["detail"] or "parse" in response.json()["detail"]


async def test_policy_violations_are_403_and_all_listed(api: ApiClient, admin_token: str) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    body = {"csr": csr_pem(weak, "bad name!").decode(), "validity_days": 5000}
    response = await api.http.post("/csr", json=body, headers=bearer(admin_token))
    assert response.status_code == 403
    violations = response.json()["violations"]
    assert any("1024" in v for v in violations)
    assert any("5000" in v or "at most" in v for v in violations)
    assert any("name" in v for v in violations)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"profile": "nosuch"}, "unknown profile"),
        ({"validity_days": 0}, "at least 1"),
        ({"validity_days": -3}, "at least 1"),
    ],
)
async def test_profile_and_validity_rules(
    api: ApiClient, admin_token: str, body: dict[str, object], fragment: str
) -> None:
    response = await api.http.post(
        "/csr", json={"csr": csr_pem(p256(), "a").decode(), **body}, headers=bearer(admin_token)
    )
    assert response.status_code == 403
    assert fragment in response.json()["detail"]


async def test_body_over_64_kib_is_413(api: ApiClient, admin_token: str) -> None:
    big = b"A" * (64 * 1024 + 1)
    headers = {**bearer(admin_token), "Content-Type": "application/pkcs10"}
    response = await api.http.post("/csr", content=big, headers=headers)
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(70):
            yield b"A" * 1024

    streamed = await api.http.post("/csr", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    # just under the limit is read (and refused as a bad CSR, not as too large)
    assert (await api.http.post("/csr", content=b"A" * (64 * 1024), headers=headers)).status_code == 400


# --- renewal over mTLS ---------------------------------------------------------------------------


async def test_holder_renews_its_own_names(api: ApiClient, issue_holder) -> None:  # type: ignore[no-untyped-def]
    holder: Holder = issue_holder("alice", ["alice", "alice@example.com"])
    api.as_peer(holder.der)
    new_key = p256()
    response = await api.http.post("/csr", json={"csr": csr_pem(new_key, "alice", ["alice@example.com"]).decode()})
    assert response.status_code == 201, response.text
    renewed = x509.load_pem_x509_certificate(response.json()["certificate"].encode())
    assert renewed.public_key() == new_key.public_key()
    assert renewed.serial_number != holder.certificate.serial_number


@pytest.mark.parametrize(
    ("cn", "sans", "body", "fragment"),
    [
        ("alice", ["bob"], {}, "'bob'"),
        ("mallory", [], {}, "the CN must be"),
        ("alice", [], {"profile": "server"}, "keeps the profile"),
    ],
)
async def test_renewal_may_not_widen(  # type: ignore[no-untyped-def]
    api: ApiClient, issue_holder, cn: str, sans: list[str], body: dict[str, object], fragment: str
) -> None:
    holder: Holder = issue_holder("alice", ["alice"])
    api.as_peer(holder.der)
    response = await api.http.post("/csr", json={"csr": csr_pem(p256(), cn, sans).decode(), **body})
    assert response.status_code == 403
    assert fragment in response.json()["detail"]


async def test_revoked_holder_cannot_renew(
    api: ApiClient, issue_holder, authority: Authority, admin_token: str
) -> None:  # type: ignore[no-untyped-def]
    holder: Holder = issue_holder("alice")
    authority.revoke(holder.serial, reason=None, caller=authority.authenticate_token(admin_token))
    api.as_peer(holder.der)
    response = await api.http.post("/csr", json={"csr": csr_pem(p256(), "alice").decode()})
    assert response.status_code == 403
    assert response.json()["title"] == "Certificate revoked"


async def test_foreign_certificate_cannot_renew(api: ApiClient, foreign_ca) -> None:  # type: ignore[no-untyped-def]
    _, certificate = foreign_ca.issue_client("alice")
    api.as_peer(certificate.public_bytes(Encoding.DER))
    response = await api.http.post("/csr", json={"csr": csr_pem(p256(), "alice").decode()})
    assert response.status_code == 403


async def test_one_use_token_issues_once(api: ApiClient, authority: Authority) -> None:
    token = authority.create_token(scope="issue", uses=1).token
    first = await api.http.post("/csr", json={"csr": csr_pem(p256(), "a").decode()}, headers=bearer(token))
    second = await api.http.post("/csr", json={"csr": csr_pem(p256(), "a").decode()}, headers=bearer(token))
    assert (first.status_code, second.status_code) == (201, 401)


async def test_refused_request_does_not_spend_a_use(api: ApiClient, authority: Authority) -> None:
    token = authority.create_token(scope="issue", uses=1).token
    refused = await api.http.post(
        "/csr", json={"csr": csr_pem(p256(), "a").decode(), "profile": "x"}, headers=bearer(token)
    )
    assert refused.status_code == 403
    accepted = await api.http.post("/csr", json={"csr": csr_pem(p256(), "a").decode()}, headers=bearer(token))
    assert accepted.status_code == 201
