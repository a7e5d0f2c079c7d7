"""Reading certificates back: serials at the edges, summaries, PEM armour."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from service.ca.crl import RevokedEntry, build_crl
from service.ca.inspect import (
    der_to_pem,
    format_serial,
    get_sans,
    has_extended_key_usage,
    is_ca_certificate,
    parse_serial,
    summarize,
)
from service.ca.issue import build_ca_certificate, build_leaf_builder
from service.ca.names import build_subject, parse_general_name
from service.ca.policy import LeafSpec
from service.ca.profiles import BUILTIN_PROFILES
from service.keys.file_key import FileKeyStore
from tests.helpers import p256

SERIAL = 0x0123456789ABCDEF0123456789ABCDEF01234567 >> 1  # 159 bits at most, like ours


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def ca() -> tuple[FileKeyStore, x509.Certificate]:
    key = p256()
    return FileKeyStore(key), build_ca_certificate(key, "inspect CA", now=utcnow(), lifetime=dt.timedelta(days=30))


@pytest.fixture(scope="module")
def issued_at() -> dt.datetime:
    return utcnow()


@pytest.fixture(scope="module")
def leaf(ca: tuple[FileKeyStore, x509.Certificate], issued_at: dt.datetime) -> x509.Certificate:
    signer, ca_cert = ca
    sans = tuple(parse_general_name(n) for n in ("svc.example.com", "10.0.0.7", "svc@example.com"))
    spec = LeafSpec(build_subject("svc.example.com"), "svc.example.com", sans, BUILTIN_PROFILES["server"], 30)
    builder = build_leaf_builder(
        spec, p256().public_key(), ca_cert, serial_number=SERIAL, now=issued_at, public_url="https://ca.test"
    )
    return signer.sign_certificate(builder)


# --- serials ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("serial", [1, 0xAB, SERIAL, 2**159 - 1, 2**160 - 1])
def test_format_and_parse_round_trip(serial: int) -> None:
    text = format_serial(serial)
    assert text == text.lower() and ":" not in text and not text.startswith("0x")
    assert parse_serial(text) == serial


def test_format_serial_is_plain_lower_case_hex() -> None:
    assert format_serial(0xDEADBEEF) == "deadbeef"
    assert format_serial(0x0A) == "a"


@pytest.mark.parametrize(
    "text",
    [
        "deadbeef",
        "DEADBEEF",
        "DeadBeef",
        "de:ad:be:ef",
        "DE:AD:BE:EF",
        "0xdeadbeef",
        "0XDEADBEEF",
        " deadbeef ",
        "00deadbeef",
    ],
)
def test_parse_serial_accepts_the_usual_spellings(text: str) -> None:
    assert parse_serial(text) == 0xDEADBEEF


def test_parse_serial_accepts_openssl_output(leaf: x509.Certificate) -> None:
    colon_hex = ":".join(f"{b:02X}" for b in leaf.serial_number.to_bytes(20, "big"))  # as `openssl x509 -serial`
    assert parse_serial(colon_hex) == leaf.serial_number
    assert parse_serial("f" * 40) == 2**160 - 1  # exactly 20 octets


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param(":", id="only-colon"),
        pytest.param("0x", id="only-prefix"),
        pytest.param("xyz", id="non-hex"),
        pytest.param("12g4", id="g"),
        pytest.param("-1", id="negative"),
        pytest.param("12 34", id="inner-space"),
        pytest.param("0x0x12", id="double-prefix"),
        pytest.param("١٢", id="arabic-digits"),
        pytest.param("1" * 41, id="41-digits"),
        pytest.param("0x" + "a" * 41, id="41-digits-prefixed"),
    ],
)
def test_parse_serial_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a certificate serial"):
        parse_serial(text)


# --- summaries ----------------------------------------------------------------------------------------


def test_summarize(leaf: x509.Certificate, ca: tuple[FileKeyStore, x509.Certificate], issued_at: dt.datetime) -> None:
    summary = summarize(leaf)
    assert summary.serial == format(SERIAL, "x")
    assert summary.subject == "CN=svc.example.com"
    assert summary.cn == "svc.example.com"
    assert summary.sans == ("svc.example.com", "10.0.0.7", "svc@example.com")
    assert summary.issuer == "CN=inspect CA"
    assert summary.not_before == issued_at - dt.timedelta(minutes=5)
    assert summary.not_after == issued_at + dt.timedelta(days=30)
    assert summary.not_before.tzinfo is not None and summary.not_after.utcoffset() == dt.timedelta(0)
    assert summary.fingerprint_sha256 == leaf.fingerprint(hashes.SHA256()).hex()
    assert len(summary.fingerprint_sha256) == 64 and summary.fingerprint_sha256 == summary.fingerprint_sha256.lower()
    assert summarize(ca[1]).fingerprint_sha256 != summary.fingerprint_sha256


def test_summarize_a_certificate_without_cn_or_sans(ca: tuple[FileKeyStore, x509.Certificate]) -> None:
    _, ca_cert = ca
    summary = summarize(ca_cert)
    assert summary.cn == "inspect CA"
    assert summary.sans == ()
    assert summary.subject == summary.issuer == "CN=inspect CA"


def test_certificate_predicates(leaf: x509.Certificate, ca: tuple[FileKeyStore, x509.Certificate]) -> None:
    assert is_ca_certificate(ca[1]) and not is_ca_certificate(leaf)
    assert has_extended_key_usage(leaf, ExtendedKeyUsageOID.SERVER_AUTH)
    assert not has_extended_key_usage(leaf, ExtendedKeyUsageOID.CLIENT_AUTH)
    assert not has_extended_key_usage(ca[1], ExtendedKeyUsageOID.SERVER_AUTH)
    assert get_sans(ca[1]) == ()


# --- PEM armour ---------------------------------------------------------------------------------------


def test_der_to_pem_matches_cryptographys_pem_for_a_certificate(leaf: x509.Certificate) -> None:
    pem = der_to_pem(leaf.public_bytes(Encoding.DER), "CERTIFICATE")
    assert pem == leaf.public_bytes(Encoding.PEM).decode()
    assert x509.load_pem_x509_certificate(pem.encode()) == leaf


def test_der_to_pem_round_trips_a_crl(ca: tuple[FileKeyStore, x509.Certificate]) -> None:
    signer, ca_cert = ca
    now = utcnow()
    entries = [RevokedEntry(n, now, "keyCompromise") for n in range(1, 40)]  # long enough for many PEM lines
    crl = build_crl(signer, ca_cert, entries, number=3, this_update=now, next_update=now + dt.timedelta(days=1))
    pem = der_to_pem(crl.public_bytes(Encoding.DER), "X509 CRL")
    assert pem.startswith("-----BEGIN X509 CRL-----\n") and pem.endswith("-----END X509 CRL-----\n")
    assert all(len(line) <= 64 for line in pem.splitlines())
    assert pem == crl.public_bytes(Encoding.PEM).decode()
    loaded = x509.load_pem_x509_crl(pem.encode())
    assert loaded == crl
    assert loaded.public_bytes(Encoding.DER) == crl.public_bytes(Encoding.DER)
