"""GET /ca, /ca.crt, /crl, /crl.pem: public, cached, and correct."""

from __future__ import annotations

import datetime as dt
from email.utils import parsedate_to_datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.authority import Authority
from tests.api.conftest import bearer, enroll
from tests.conftest import ApiClient, authority_at
from tests.helpers import p256

pytestmark = pytest.mark.anyio


async def test_ca_in_pem_and_der(api: ApiClient, authority: Authority) -> None:
    pem = await api.http.get("/ca")
    assert pem.headers["content-type"] == "application/pem-certificate-chain"
    assert x509.load_pem_x509_certificates(pem.content) == [authority.ca_certificate]
    der = await api.http.get("/ca.crt")
    assert der.headers["content-type"] == "application/pkix-cert"
    assert der.content == authority.ca_certificate.public_bytes(Encoding.DER)


async def _crl(api: ApiClient) -> x509.CertificateRevocationList:
    response = await api.http.get("/crl")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pkix-crl"
    return x509.load_der_x509_crl(response.content)


def _number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


async def test_crl_is_signed_lists_revoked_and_number_grows(
    api: ApiClient, admin_token: str, authority: Authority
) -> None:
    empty = await _crl(api)
    assert empty.is_signature_valid(authority.ca_certificate.public_key())  # type: ignore[arg-type]
    assert len(empty) == 0 and empty.next_update_utc is not None
    assert _number(await _crl(api)) == _number(empty)  # cached: nothing changed, same CRL

    alice = await enroll(api, admin_token, "alice")
    bob = await enroll(api, admin_token, "bob")
    await api.http.post(f"/certs/{alice.serial}/revoke", json={"reason": "keyCompromise"}, headers=bearer(admin_token))
    after = await _crl(api)
    assert _number(after) > _number(empty)
    entry = after.get_revoked_certificate_by_serial_number(alice.certificate.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert after.get_revoked_certificate_by_serial_number(bob.certificate.serial_number) is None

    await api.http.post(f"/certs/{bob.serial}/revoke", headers=bearer(admin_token))
    latest = await _crl(api)
    assert _number(latest) > _number(after) and len(latest) == 2


async def test_crl_pem_matches_der(api: ApiClient) -> None:
    der = (await api.http.get("/crl")).content
    pem = await api.http.get("/crl.pem")
    assert pem.text.startswith("-----BEGIN X509 CRL-----")
    assert x509.load_pem_x509_crl(pem.content).public_bytes(Encoding.DER) == der


async def test_crl_http_caching(api: ApiClient) -> None:
    first = await api.http.get("/crl")
    etag = first.headers["etag"]
    assert first.headers["last-modified"] and first.headers["expires"]
    again = await api.http.get("/crl", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert (await api.http.get("/crl", headers={"If-None-Match": '"other"'})).status_code == 200
    crl = x509.load_der_x509_crl(first.content)
    assert crl.next_update_utc is not None
    max_age = int(first.headers["cache-control"].split("max-age=")[1].split(",")[0])
    remaining = (crl.next_update_utc - dt.datetime.now(dt.UTC)).total_seconds()
    assert abs(max_age - remaining) < 5
    assert parsedate_to_datetime(first.headers["expires"]) == crl.next_update_utc.replace(microsecond=0)
    pem = await api.http.get("/crl.pem")
    assert pem.headers["etag"] != etag  # another representation, another tag


async def test_expired_certificates_leave_the_crl(
    api: ApiClient, settings, authority: Authority, admin_token: str
) -> None:  # type: ignore[no-untyped-def]
    past = authority_at(settings, dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    old = past.issue_for_key(p256().public_key(), cn="old", sans=[], validity_days=1)
    past.revoke(old.summary.serial, reason=None, caller=past.authenticate_token(admin_token))
    past.close()
    crl = await _crl(api)
    assert crl.get_revoked_certificate_by_serial_number(old.certificate.serial_number) is None


async def test_crl_rebuilt_past_half_life(settings, authority: Authority) -> None:  # type: ignore[no-untyped-def]
    first = authority.current_crl()
    assert authority.current_crl().number == first.number
    later = authority_at(settings, dt.datetime.now(dt.UTC) + authority.crl_lifetime * 0.51)
    assert later.current_crl().number == first.number + 1
    later.close()
