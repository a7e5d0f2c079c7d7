"""CRLs: number, AKI, next update, reasons, and a signature relying parties can check."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.ca.crl import (
    REASONS,
    REVOCATION_REASONS,
    RevokedEntry,
    build_crl,
    build_crl_der,
    encode_revoked_entry,
    is_tbs_certlist,
    parse_reason,
)
from service.ca.issue import build_ca_certificate, random_serial_number
from service.ca.keys import PrivateKey, describe_public_key, generate_private_key
from service.keys.file_key import FileKeyStore
from tests.helpers import p256


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module", params=["p256", "rsa2048", "ed25519"])
def ca(request: pytest.FixtureRequest) -> tuple[PrivateKey, x509.Certificate]:
    key = generate_private_key(request.param)
    return key, build_ca_certificate(key, f"CRL test CA {request.param}", now=utcnow(), lifetime=dt.timedelta(days=30))


def crl_for(
    ca: tuple[PrivateKey, x509.Certificate], entries: list[RevokedEntry], number: int = 7
) -> tuple[x509.CertificateRevocationList, dt.datetime]:
    key, certificate = ca
    this_update = utcnow()
    crl = build_crl(
        FileKeyStore(key),
        certificate,
        entries,
        number=number,
        this_update=this_update,
        next_update=this_update + dt.timedelta(hours=24),
    )
    return crl, this_update


def test_an_empty_crl(ca: tuple[PrivateKey, x509.Certificate]) -> None:
    _, certificate = ca
    crl, this_update = crl_for(ca, [], number=1)
    assert len(crl) == 0
    assert list(crl) == []
    assert crl.issuer == certificate.subject
    assert crl.last_update_utc == this_update
    assert crl.next_update_utc == this_update + dt.timedelta(hours=24)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber) == x509.Extension(
        x509.CRLNumber.oid, False, x509.CRLNumber(1)
    )
    ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier) == x509.Extension(
        x509.AuthorityKeyIdentifier.oid, False, x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    )
    assert crl.is_signature_valid(certificate.public_key())  # type: ignore[arg-type]


def test_a_crl_with_three_entries(ca: tuple[PrivateKey, x509.Certificate]) -> None:
    _, certificate = ca
    revoked_at = utcnow() - dt.timedelta(hours=1)
    entries = [
        RevokedEntry(random_serial_number(), revoked_at, "keyCompromise"),
        RevokedEntry(random_serial_number(), revoked_at + dt.timedelta(minutes=1)),
        RevokedEntry(random_serial_number(), revoked_at + dt.timedelta(minutes=2), "superseded"),
    ]
    crl, _ = crl_for(ca, entries, number=42)
    assert len(crl) == 3
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value == x509.CRLNumber(42)
    assert crl.is_signature_valid(certificate.public_key())  # type: ignore[arg-type]

    by_serial = {entry.serial_number: entry for entry in crl}
    assert set(by_serial) == {entry.serial_number for entry in entries}
    for entry in entries:
        revoked = crl.get_revoked_certificate_by_serial_number(entry.serial_number)
        assert revoked is not None
        assert revoked.revocation_date_utc == entry.revoked_at
    compromised = by_serial[entries[0].serial_number].extensions.get_extension_for_class(x509.CRLReason)
    assert compromised == x509.Extension(x509.CRLReason.oid, False, x509.CRLReason(x509.ReasonFlags.key_compromise))
    superseded = by_serial[entries[2].serial_number].extensions.get_extension_for_class(x509.CRLReason)
    assert superseded.value == x509.CRLReason(x509.ReasonFlags.superseded)
    with pytest.raises(x509.ExtensionNotFound):  # RFC 5280: "unspecified" is said by leaving the reason out
        by_serial[entries[1].serial_number].extensions.get_extension_for_class(x509.CRLReason)


@pytest.mark.parametrize("reason", REVOCATION_REASONS)
def test_every_revocation_reason_round_trips(ca: tuple[PrivateKey, x509.Certificate], reason: str) -> None:
    serial = random_serial_number()
    crl, _ = crl_for(ca, [RevokedEntry(serial, utcnow(), reason)])
    loaded = x509.load_der_x509_crl(crl.public_bytes(Encoding.DER))
    revoked = loaded.get_revoked_certificate_by_serial_number(serial)
    assert revoked is not None
    reasons = [e.value.reason for e in revoked.extensions if isinstance(e.value, x509.CRLReason)]
    if reason == "unspecified":
        assert reasons == []
    else:
        assert len(reasons) == 1 and reasons[0].value == reason


def test_the_signature_fails_for_another_key_of_the_same_type(ca: tuple[PrivateKey, x509.Certificate]) -> None:
    crl, _ = crl_for(ca, [RevokedEntry(random_serial_number(), utcnow(), "keyCompromise")])
    other = generate_private_key(describe_public_key(ca[0].public_key()))  # type: ignore[arg-type]
    assert not crl.is_signature_valid(other.public_key())
    assert not crl.is_signature_valid(p256().public_key())


# --- many entries: build_crl_der writes what build_crl writes ------------------------------------------


def stored_text(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")  # as SQLite keeps it


def test_build_crl_der_writes_the_bytes_build_crl_writes(ca: tuple[PrivateKey, x509.Certificate]) -> None:
    key, certificate = ca
    now = utcnow()
    serials = [1, 127, 128, 255, 256, 2**63, 2**158, 2**159 - 1, *(random_serial_number() for _ in range(50))]
    times = [now - dt.timedelta(days=3, microseconds=123456), dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC)]
    times.append(dt.datetime(2050, 1, 1, tzinfo=dt.UTC))  # GeneralizedTime from 2050 on
    reasons = [*REASONS, None]
    entries = [(serial, times[i % len(times)], reasons[i % len(reasons)]) for i, serial in enumerate(serials)]
    signer = FileKeyStore(key)
    expected = build_crl(
        signer,
        certificate,
        [RevokedEntry(serial, when, reason or "unspecified") for serial, when, reason in entries],
        number=9,
        this_update=now,
        next_update=now + dt.timedelta(days=7),
    )
    der = build_crl_der(
        signer,
        certificate,
        [encode_revoked_entry(format(serial, "x"), stored_text(when), reason) for serial, when, reason in entries],
        number=9,
        this_update=now,
        next_update=now + dt.timedelta(days=7),
    )
    crl = x509.load_der_x509_crl(der)
    assert crl.tbs_certlist_bytes == expected.tbs_certlist_bytes
    assert crl.signature_algorithm_oid == expected.signature_algorithm_oid
    assert crl.is_signature_valid(certificate.public_key())  # type: ignore[arg-type]
    assert len(crl) == len(entries)


def test_build_crl_der_without_entries_is_build_crl(ca: tuple[PrivateKey, x509.Certificate]) -> None:
    key, certificate = ca
    now = utcnow()
    crl = x509.load_der_x509_crl(
        build_crl_der(FileKeyStore(key), certificate, [], number=1, this_update=now, next_update=now)
    )
    assert len(crl) == 0 and crl.is_signature_valid(certificate.public_key())  # type: ignore[arg-type]


def test_the_key_store_signs_only_a_tbs_certlist(ca: tuple[PrivateKey, x509.Certificate]) -> None:
    key, certificate = ca
    crl, _ = crl_for(ca, [])
    assert is_tbs_certlist(crl.tbs_certlist_bytes)
    for other in (certificate.tbs_certificate_bytes, b"", b"\x30\x00", b"anything"):
        assert not is_tbs_certlist(other)
        with pytest.raises(ValueError, match="TBSCertList"):
            FileKeyStore(key).sign_crl_tbs(other)


# --- reasons as users type them -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("keyCompromise", "keyCompromise"),
        ("KEYCOMPROMISE", "keyCompromise"),
        ("keycompromise", "keyCompromise"),
        (" superseded ", "superseded"),
        ("CACompromise", "cACompromise"),
        ("cessationofoperation", "cessationOfOperation"),
        ("unspecified", "unspecified"),
        ("", "unspecified"),
        (None, "unspecified"),
    ],
)
def test_parse_reason_accepts_any_case(text: str | None, expected: str) -> None:
    assert parse_reason(text) == expected


@pytest.mark.parametrize("text", ["removeFromCRL", "REMOVEFROMCRL", "certificateHold", "compromised", "key_compromise"])
def test_parse_reason_refuses_unknown_names(text: str) -> None:
    with pytest.raises(ValueError, match="unknown revocation reason") as caught:
        parse_reason(text)
    assert "keyCompromise" in str(caught.value)  # the message lists what is allowed


def test_revocation_reasons_are_the_rfc_names_without_delta_and_hold() -> None:
    assert set(REVOCATION_REASONS) == {
        "unspecified",
        "keyCompromise",
        "cACompromise",
        "affiliationChanged",
        "superseded",
        "cessationOfOperation",
        "privilegeWithdrawn",
        "aACompromise",
    }
