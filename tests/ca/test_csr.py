"""CSRs: PEM or DER in, a verified request out; everything else is an InvalidCSRError."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from service.ca.csr import build_csr, is_supported_san, load_csr, read_request
from service.ca.keys import PrivateKey, public_keys_match
from service.ca.names import build_subject
from service.errors import InvalidCSRError, InvalidRequestError
from tests.helpers import now, p256


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return p256()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def csr(key: ec.EllipticCurvePrivateKey) -> x509.CertificateSigningRequest:
    return build_csr(key, "host.example.com", ["host.example.com", "10.0.0.7", "alice@example.com"])


def tamper_signature(der: bytes) -> bytes:
    """Flips a bit in the last octet of the DER: the end of the signature BIT STRING."""
    return der[:-1] + bytes([der[-1] ^ 0x01])


def test_load_csr_reads_pem(csr: x509.CertificateSigningRequest) -> None:
    assert load_csr(csr.public_bytes(Encoding.PEM)) == csr


def test_load_csr_reads_der(csr: x509.CertificateSigningRequest) -> None:
    assert load_csr(csr.public_bytes(Encoding.DER)) == csr


def test_load_csr_reads_the_new_certificate_request_header(csr: x509.CertificateSigningRequest) -> None:
    pem = csr.public_bytes(Encoding.PEM).replace(b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST")
    assert pem.startswith(b"-----BEGIN NEW CERTIFICATE REQUEST-----")
    assert load_csr(pem) == csr


def test_load_csr_tolerates_surrounding_whitespace(csr: x509.CertificateSigningRequest) -> None:
    assert load_csr(b"\n\n  " + csr.public_bytes(Encoding.PEM) + b"\n\n") == csr


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"garbage", id="garbage"),
        pytest.param(b"\x30\x03\x02\x01\x01", id="der-not-a-csr"),
        pytest.param(b"-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n", id="bad"),
        pytest.param(b"-----BEGIN CERTIFICATE REQUEST-----\n", id="pem-without-end"),
    ],
)
def test_load_csr_refuses_garbage(data: bytes) -> None:
    with pytest.raises(InvalidCSRError):
        load_csr(data)


def test_load_csr_refuses_truncated_der(csr: x509.CertificateSigningRequest) -> None:
    der = csr.public_bytes(Encoding.DER)
    for length in (1, len(der) // 2, len(der) - 1):
        with pytest.raises(InvalidCSRError):
            load_csr(der[:length])


def test_load_csr_refuses_a_certificate(key: ec.EllipticCurvePrivateKey) -> None:
    subject = build_subject("not a csr")
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now())
        .not_valid_after(now() + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(InvalidCSRError, match="not a CERTIFICATE REQUEST"):
        load_csr(certificate.public_bytes(Encoding.PEM))
    with pytest.raises(InvalidCSRError):
        load_csr(certificate.public_bytes(Encoding.DER))


@pytest.mark.parametrize("key_kind", ["p256", "rsa2048", "ed25519"])
def test_load_csr_refuses_a_tampered_signature(key_kind: str, key: PrivateKey, rsa_key: PrivateKey) -> None:
    signer: PrivateKey = {"p256": key, "rsa2048": rsa_key, "ed25519": ed25519.Ed25519PrivateKey.generate()}[key_kind]
    der = build_csr(signer, "host.example.com", []).public_bytes(Encoding.DER)
    tampered = tamper_signature(der)
    assert x509.load_der_x509_csr(tampered).is_signature_valid is False  # still parses: only the signature is off
    with pytest.raises(InvalidCSRError, match="signature"):
        load_csr(tampered)
    pem = x509.load_der_x509_csr(tampered).public_bytes(Encoding.PEM)
    with pytest.raises(InvalidCSRError, match="signature"):
        load_csr(pem)


def test_load_csr_refuses_a_csr_signed_by_another_key(key: ec.EllipticCurvePrivateKey) -> None:
    """The body names one key, the signature comes from another."""
    other = p256()
    forged = build_csr(other, "host.example.com", [])
    der = forged.public_bytes(Encoding.DER)
    spki = PublicFormat.SubjectPublicKeyInfo
    spliced = der.replace(
        forged.public_key().public_bytes(Encoding.DER, spki), key.public_key().public_bytes(Encoding.DER, spki)
    )
    assert spliced != der
    with pytest.raises(InvalidCSRError, match="signature"):
        load_csr(spliced)


def test_invalid_csr_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        load_csr(b"garbage")
    assert caught.value.detail  # a message the API can show


def test_read_request_extracts_cn_sans_and_key(
    key: ec.EllipticCurvePrivateKey, csr: x509.CertificateSigningRequest
) -> None:
    request = read_request(load_csr(csr.public_bytes(Encoding.PEM)))
    assert request.common_name == "host.example.com"
    assert request.subject == build_subject("host.example.com")
    assert request.sans == (
        x509.DNSName("host.example.com"),
        x509.IPAddress(ipaddress.ip_address("10.0.0.7")),
        x509.RFC822Name("alice@example.com"),
    )
    assert request.san_values == ["host.example.com", "10.0.0.7", "alice@example.com"]
    assert public_keys_match(request.public_key, key.public_key())


def test_read_request_without_sans(key: ec.EllipticCurvePrivateKey) -> None:
    request = read_request(build_csr(key, "alice", []))
    assert request.common_name == "alice"
    assert request.sans == ()
    assert request.san_values == []


def test_read_request_without_cn(key: ec.EllipticCurvePrivateKey) -> None:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("host.example.com")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    request = read_request(load_csr(csr.public_bytes(Encoding.DER)))
    assert request.common_name is None
    assert request.san_values == ["host.example.com"]


def test_read_request_keeps_unsupported_sans_for_policy_to_refuse(key: ec.EllipticCurvePrivateKey) -> None:
    directory = x509.DirectoryName(build_subject("x"))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(build_subject("alice"))
        .add_extension(x509.SubjectAlternativeName([directory, x509.DNSName("a.example.com")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    request = read_request(csr)
    assert request.sans == (directory, x509.DNSName("a.example.com"))
    assert [is_supported_san(name) for name in request.sans] == [False, True]
    assert request.san_values == ["unsupported:DirectoryName", "a.example.com"]


@pytest.mark.parametrize("key_kind", ["p256", "rsa2048", "ed25519"])
def test_build_csr_makes_a_csr_that_loads(key_kind: str, key: PrivateKey, rsa_key: PrivateKey) -> None:
    signer: PrivateKey = {"p256": key, "rsa2048": rsa_key, "ed25519": ed25519.Ed25519PrivateKey.generate()}[key_kind]
    csr = build_csr(signer, "svc", ["svc.example.com", "URI:spiffe://example.org/svc"])
    request = read_request(load_csr(csr.public_bytes(Encoding.PEM)))
    assert request.common_name == "svc"
    assert request.san_values == ["svc.example.com", "spiffe://example.org/svc"]
    assert public_keys_match(request.public_key, signer.public_key())


def test_build_csr_refuses_a_bad_name(key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(ValueError):
        build_csr(key, "svc", ["bad name"])
