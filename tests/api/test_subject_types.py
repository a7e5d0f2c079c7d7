"""POST /csr re-encodes every subject attribute into a string type RFC 5280 allows for it, or refuses it (400 when
it is no character string at all, 403 when its type cannot hold the value), and every certificate it returns
loads in OpenSSL."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.api.conftest import bearer
from tests.conftest import ApiClient
from tests.hostile import REENCODED, REFUSED, Attribute, csr_with

pytestmark = pytest.mark.anyio
CN: Attribute = (NameOID.COMMON_NAME, "svc.example.com", x509.name._ASN1Type.UTF8String)


def _with_cn(attributes: list[Attribute]) -> list[Attribute]:
    return attributes if any(oid == NameOID.COMMON_NAME for oid, _, _ in attributes) else [CN, *attributes]


@pytest.mark.parametrize(("what", "attributes", "types"), REENCODED, ids=[r[0] for r in REENCODED])
async def test_subjects_are_reencoded_and_load_in_openssl(
    api: ApiClient, admin_token: str, tmp_path: Path, what: str, attributes: list[Attribute], types: list[object]
) -> None:
    asked = _with_cn(attributes)
    response = await api.http.post(
        "/csr",
        content=csr_with(asked, ["svc.example.com"]),
        headers={**bearer(admin_token), "Content-Type": "application/pkcs10"},
    )
    assert response.status_code == 201, response.text
    certificate = x509.load_pem_x509_certificate(response.json()["certificate"].encode())
    issued = [(a.oid, a.value, a._type) for a in certificate.subject]
    expected_types = types if len(asked) == len(attributes) else [x509.name._ASN1Type.UTF8String, *types]
    assert issued == [(oid, value, kind) for (oid, value, _), kind in zip(asked, expected_types, strict=True)]
    openssl = shutil.which("openssl")
    assert openssl
    (tmp_path / "leaf.pem").write_text(response.json()["certificate"])
    loaded = subprocess.run(
        [openssl, "x509", "-in", str(tmp_path / "leaf.pem"), "-noout", "-subject", "-nameopt", "utf8"],
        capture_output=True,
        text=True,
    )
    assert loaded.returncode == 0 and loaded.stdout.startswith("subject="), loaded.stderr


@pytest.mark.parametrize(("what", "attributes", "status", "words"), REFUSED, ids=[r[0] for r in REFUSED])
async def test_subjects_that_cannot_be_encoded_are_refused(
    api: ApiClient, admin_token: str, what: str, attributes: list[Attribute], status: int, words: str
) -> None:
    response = await api.http.post(
        "/csr",
        content=csr_with(_with_cn(attributes), ["svc.example.com"]),
        headers={**bearer(admin_token), "Content-Type": "application/pkcs10"},
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]
    listed = await api.http.get("/certs", headers=bearer(admin_token))
    assert all(item["cn"] != "oct" for item in listed.json()["items"])
