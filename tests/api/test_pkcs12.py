"""POST /pkcs12: a bundle that openssl and cryptography both open, with modern or legacy encryption."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from service.authority import Authority
from service.db.models import CertificateRecord
from tests.api.conftest import bearer
from tests.conftest import ApiClient

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"


def _openssl_info(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "pkcs12", "-info", "-noout", "-in", str(path), "-passin", f"pass:{PASSWORD}", *extra],
        capture_output=True,
        text=True,
    )


async def test_modern_bundle(api: ApiClient, admin_token: str, authority: Authority, tmp_path: Path) -> None:
    body = {"cn": "alice", "sans": ["alice@example.com"], "password": PASSWORD, "validity_days": 30}
    response = await api.http.post("/pkcs12", json=body, headers=bearer(admin_token))
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/x-pkcs12"
    assert response.headers["cache-control"] == "no-store"
    bundle = pkcs12.load_pkcs12(response.content, PASSWORD.encode())
    assert bundle.key is not None and bundle.cert is not None
    certificate = bundle.cert.certificate
    assert certificate.public_key() == bundle.key.public_key()
    assert [c.certificate for c in bundle.additional_certs] == [authority.ca_certificate]
    assert response.headers["location"] == f"/certs/{format(certificate.serial_number, 'x')}"
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with authority.db.reader() as session:  # recorded like any certificate, and the key nowhere in the database
        record = session.query(CertificateRecord).filter_by(serial=format(certificate.serial_number, "x")).one()
        assert record.profile == "client"
    path = tmp_path / "alice.p12"
    path.write_bytes(response.content)
    info = _openssl_info(path)
    assert info.returncode == 0, info.stderr
    assert "PBES2" in info.stderr and "AES-256-CBC" in info.stderr and "sha256" in info.stderr.lower()
    wrong = subprocess.run(
        ["openssl", "pkcs12", "-info", "-noout", "-in", str(path), "-passin", "pass:nope-nope"],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode != 0


async def test_legacy_bundle_uses_3des(api: ApiClient, admin_token: str, tmp_path: Path) -> None:
    body = {"cn": "bob", "password": PASSWORD, "legacy": True}
    response = await api.http.post("/pkcs12", json=body, headers=bearer(admin_token))
    assert response.status_code == 201
    path = tmp_path / "bob.p12"
    path.write_bytes(response.content)
    info = _openssl_info(path, "-legacy")
    assert info.returncode == 0, info.stderr
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in info.stderr
    assert pkcs12.load_pkcs12(response.content, PASSWORD.encode()).cert is not None


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"cn": "alice", "password": "short"}, 422),
        ({"cn": "alice"}, 422),
        ({"cn": "alice", "password": PASSWORD, "profile": "nosuch"}, 403),
        ({"cn": "alice", "password": PASSWORD, "sans": ["not a name"]}, 403),
        ({"cn": "alice", "password": PASSWORD, "validity_days": 9999}, 403),
    ],
)
async def test_refusals(api: ApiClient, admin_token: str, body: dict[str, object], status: int) -> None:
    response = await api.http.post("/pkcs12", json=body, headers=bearer(admin_token))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert PASSWORD not in response.text and "short" not in response.text.replace("at least", "")


async def test_read_token_may_not(api: ApiClient, authority: Authority) -> None:
    token = authority.create_token(scope="read").token
    response = await api.http.post("/pkcs12", json={"cn": "alice", "password": PASSWORD}, headers=bearer(token))
    assert response.status_code == 403
