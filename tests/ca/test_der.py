"""Swapping a signature into cryptography's encoding (what the PKCS#11 key store does), byte for byte."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from service.ca import der
from service.ca.issue import build_root_builder
from service.ca.ocsp import responder_key_hash
from tests.helpers import p256


def _builder(key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return build_root_builder(key.public_key(), "der test", now=when, lifetime=dt.timedelta(days=1))


def test_the_tbs_does_not_depend_on_which_key_of_the_type_signs() -> None:
    """So a stand-in key's encoding is the real key's, up to the signature."""
    builder = _builder(p256())
    one, two = (builder.sign(p256(), hashes.SHA256()) for _ in range(2))
    assert one.tbs_certificate_bytes == two.tbs_certificate_bytes
    assert der.tbs_of(one.public_bytes(Encoding.DER)) == one.tbs_certificate_bytes


def test_a_swapped_signature_gives_exactly_the_certificate_the_real_key_makes() -> None:
    key = p256()
    builder = _builder(key)
    real = builder.sign(key, hashes.SHA256())
    draft = builder.sign(p256(), hashes.SHA256())  # a stand-in signs the same builder
    swapped = der.with_signature(draft.public_bytes(Encoding.DER), real.signature)
    assert swapped == real.public_bytes(Encoding.DER)
    x509.load_der_x509_certificate(swapped).verify_directly_issued_by(real)  # and it verifies


def test_a_crl_takes_a_swapped_signature_too() -> None:
    key = p256()
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=x509.Name([]),
        last_update=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        next_update=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
    )
    real = builder.sign(key, hashes.SHA256())
    draft = builder.sign(p256(), hashes.SHA256()).public_bytes(Encoding.DER)
    assert der.with_signature(draft, real.signature) == real.public_bytes(Encoding.DER)


def test_ocsp_responses_split_and_join_back() -> None:
    key = p256()
    issuer = _builder(key).sign(key, hashes.SHA256())
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=b"\x01" * 20,
            issuer_key_hash=responder_key_hash(issuer),
            serial_number=5,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=when,
            next_update=when,
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
        .sign(key, hashes.SHA256())
    )
    whole = response.public_bytes(Encoding.DER)
    before, basic, after = der.basic_ocsp_response(whole)
    assert before + basic + after == whole
    assert der.tbs_of(basic) == response.tbs_response_bytes
    assert der.ocsp_with_basic(whole, basic) == whole
    assert response.responder_key_hash == responder_key_hash(issuer)


def test_garbage_is_refused() -> None:
    with pytest.raises(ValueError):
        der.with_signature(b"\x04\x03abc", b"sig")
    with pytest.raises(ValueError):
        der.tbs_of(b"\x30\x10\x02\x01")  # truncated
