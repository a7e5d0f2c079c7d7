"""Helpers for API tests: issue through the API, and play a client certificate."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.authority import Authority
from service.ca.keys import PrivateKey
from tests.conftest import ApiClient
from tests.helpers import csr_pem, p256


@dataclass
class Holder:
    key: PrivateKey
    certificate: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(Encoding.DER)

    @property
    def serial(self) -> str:
        return format(self.certificate.serial_number, "x")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def enroll(api: ApiClient, token: str, cn: str, sans: list[str] | None = None, **body: object) -> Holder:
    key = p256()
    response = await api.http.post("/csr", json={"csr": csr_pem(key, cn, sans).decode(), **body}, headers=bearer(token))
    assert response.status_code == 201, response.text
    return Holder(key, x509.load_pem_x509_certificate(response.json()["certificate"].encode()))


@pytest.fixture
def issue_holder(authority: Authority):  # type: ignore[no-untyped-def]
    """Issues directly through the authority (no HTTP): for callers the test then plays."""

    def issue(cn: str, sans: list[str] | None = None, profile: str = "client") -> Holder:
        key = p256()
        issued = authority.issue_for_key(key.public_key(), cn=cn, sans=sans or [], profile=profile)
        return Holder(key, issued.certificate)

    return issue
