"""The OCSP responder (RFC 6960) through the API: good, revoked, unknown, nonces, caching, bad input."""

from __future__ import annotations

import base64
import datetime as dt
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from service.authority import Authority
from tests.api.conftest import Holder
from tests.conftest import ApiClient
from tests.helpers import ForeignCA

pytestmark = pytest.mark.anyio
OCSP_REQUEST = {"Content-Type": "application/ocsp-request"}


def _request(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    *,
    nonce: bytes | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


async def _ask(api: ApiClient, data: bytes) -> ocsp.OCSPResponse:
    response = await api.http.post("/ocsp", content=data, headers=OCSP_REQUEST)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(response.content)


async def test_good_then_revoked_with_time_and_reason(
    api: ApiClient,
    authority: Authority,
    issue_holder,  # type: ignore[no-untyped-def]
    admin_token: str,
) -> None:
    holder: Holder = issue_holder("alice")
    ca = authority.ca_certificate
    good = await _ask(api, _request(holder.certificate, ca))
    assert good.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert good.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert good.serial_number == holder.certificate.serial_number
    public_key = ca.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey) and good.signature_hash_algorithm is not None
    public_key.verify(good.signature, good.tbs_response_bytes, ec.ECDSA(good.signature_hash_algorithm))
    assert good.next_update_utc is not None and good.next_update_utc > good.this_update_utc

    authority.revoke(holder.serial, reason="keyCompromise", caller=authority.authenticate_token(admin_token))
    revoked = await _ask(api, _request(holder.certificate, ca))
    assert revoked.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_reason == x509.ReasonFlags.key_compromise
    assert revoked.revocation_time_utc is not None
    assert abs(revoked.revocation_time_utc - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


async def test_unknown_serial(api: ApiClient, authority: Authority, foreign_ca: ForeignCA) -> None:
    # a certificate this CA never issued, but asked about under our issuer hashes
    _, stranger = foreign_ca.issue_client("x")
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        _request_hashes(authority.ca_certificate)[0],
        _request_hashes(authority.ca_certificate)[1],
        stranger.serial_number,
        hashes.SHA1(),
    )
    answer = await _ask(api, builder.build().public_bytes(Encoding.DER))
    assert answer.certificate_status == ocsp.OCSPCertStatus.UNKNOWN


def _request_hashes(ca: x509.Certificate) -> tuple[bytes, bytes]:
    request = ocsp.load_der_ocsp_request(_request(ca, ca))
    return request.issuer_name_hash, request.issuer_key_hash


async def test_another_issuer_is_unauthorized(api: ApiClient, foreign_ca: ForeignCA) -> None:
    _, stranger = foreign_ca.issue_client("x")
    answer = await _ask(api, _request(stranger, foreign_ca.certificate))
    assert answer.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


async def test_nonce_is_echoed_and_sha256_ids_work(api: ApiClient, authority: Authority, issue_holder) -> None:  # type: ignore[no-untyped-def]
    holder: Holder = issue_holder("alice")
    nonce = os.urandom(16)
    answer = await _ask(
        api, _request(holder.certificate, authority.ca_certificate, nonce=nonce, algorithm=hashes.SHA256())
    )
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert answer.hash_algorithm.name == "sha256"


async def test_unchanged_answers_are_cached_changed_ones_are_not(
    api: ApiClient,
    authority: Authority,  # type: ignore[no-untyped-def]
    issue_holder,
    admin_token: str,
) -> None:
    holder: Holder = issue_holder("alice")
    question = _request(holder.certificate, authority.ca_certificate)
    first = (await api.http.post("/ocsp", content=question, headers=OCSP_REQUEST)).content
    second = (await api.http.post("/ocsp", content=question, headers=OCSP_REQUEST)).content
    assert first == second  # the same signed bytes: served from the cache
    authority.revoke(holder.serial, reason=None, caller=authority.authenticate_token(admin_token))
    third = ocsp.load_der_ocsp_response((await api.http.post("/ocsp", content=question, headers=OCSP_REQUEST)).content)
    assert third.certificate_status == ocsp.OCSPCertStatus.REVOKED


async def test_get_with_base64_in_the_path(api: ApiClient, authority: Authority, issue_holder) -> None:  # type: ignore[no-untyped-def]
    holder: Holder = issue_holder("alice")
    encoded = base64.b64encode(_request(holder.certificate, authority.ca_certificate)).decode()
    response = await api.http.get(f"/ocsp/{encoded}")
    assert response.status_code == 200
    assert ocsp.load_der_ocsp_response(response.content).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert "max-age=" in response.headers["cache-control"] and response.headers["expires"]


@pytest.mark.parametrize("body", [b"", b"garbage", b"\x30\x03\x02\x01\x01", b"\x30" * 5000])
async def test_malformed_requests_get_malformed_request(api: ApiClient, body: bytes) -> None:
    answer = await _ask(api, body)
    assert answer.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


@pytest.mark.parametrize(
    "path", ["/ocsp/!!notbase64", "/ocsp/AAAA", "/ocsp/" + "A" * 4000, "/ocsp/%00", "/ocsp/MEow%00TjBM"]
)
async def test_malformed_get(api: ApiClient, path: str) -> None:
    response = await api.http.get(path)
    assert response.status_code == 200
    assert ocsp.load_der_ocsp_response(response.content).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
