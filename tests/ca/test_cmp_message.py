"""PKIMessage: reading what `openssl cmp` sends, refusing what it must not take, and checking protection.

Every refusal is a CmpError carrying the PKIFailureInfo bit RFC 9483 3.5 names; the requests come from the real
client (openssl cmp -reqout, offline) and from tests/ca/cmp_helpers.py's small client, which writes wrong ones on
purpose.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from service.ca.cmp_der import split
from service.ca.cmp_failures import CmpError, FailInfo
from service.ca.cmp_message import MAX_MESSAGE_BYTES, check_message_time, check_recipient, load_pki_message
from service.ca.cmp_names import NULL_DN
from service.ca.cmp_protection import MAX_ITERATIONS, MIN_ITERATIONS, compute_mac
from service.ca.cmp_verify import verify_mac_protection, verify_signature_protection
from service.ca.der import tlv
from service.ca.names import build_subject
from tests.ca.cmp_helpers import (
    PBM,
    PBMAC1,
    Mac,
    Signature,
    cert_req_messages,
    cmp_ca,
    device,
    foreign_ca,
    general_message,
    openssl,
    openssl_request,
    request,
    write_pem,
)
from tests.helpers import now, p256


def refused(bit: FailInfo, call: object, *args: object, **kwargs: object) -> CmpError:
    with pytest.raises(CmpError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    assert caught.value.fail_info == bit, caught.value.detail
    return caught.value


def ir(protection: Mac | Signature | None = None, **options: object) -> bytes:
    body = cert_req_messages(p256(), build_subject("dev1.test"))
    return request("ir", body, protection or Mac(b"one-time secret"), **options)  # type: ignore[arg-type]


# --- what openssl cmp sends --------------------------------------------------------------------------------------


def test_an_openssl_ir_reads_and_its_mac_verifies_with_the_secret_only(tmp_path: Path) -> None:
    key = write_pem(tmp_path, "new.key", p256())
    der = openssl_request(
        tmp_path, "-cmd", "ir", "-ref", "ref-42", "-secret", "pass:s3cret", "-subject", "/CN=dev1.test",
        "-newkey", str(key), "-certout", str(tmp_path / "out.pem"), "-implicit_confirm",
    )  # fmt: skip
    message = load_pki_message(der)
    assert message.body_type == "ir"
    assert message.protection_kind == "mac"
    assert message.header.pvno == 2
    assert message.header.sender_name == build_subject("dev1.test")
    assert message.header.recipient == NULL_DN  # no -recipient: openssl sends the NULL-DN
    assert message.header.sender_kid == b"ref-42"
    assert len(message.header.transaction_id) == 16 and len(message.header.sender_nonce) == 16
    assert message.header.recip_nonce is None
    assert message.header.implicit_confirm is True
    assert message.header.message_time is not None
    assert abs(message.header.message_time - now()) < dt.timedelta(minutes=1)
    verify_mac_protection(message, b"s3cret")
    refused(FailInfo.badMessageCheck, verify_mac_protection, message, b"s3cret!")


def test_openssl_asks_for_implicit_confirmation_only_when_told(tmp_path: Path) -> None:
    key = write_pem(tmp_path, "new.key", p256())
    der = openssl_request(
        tmp_path, "-cmd", "ir", "-ref", "r", "-secret", "pass:s", "-subject", "/CN=dev1.test",
        "-newkey", str(key), "-certout", str(tmp_path / "out.pem"),
    )  # fmt: skip
    assert load_pki_message(der).header.implicit_confirm is False


def test_an_openssl_cr_is_signed_by_its_certificate_which_comes_first_in_extra_certs(tmp_path: Path) -> None:
    key, certificate = device()
    der = openssl_request(
        tmp_path, "-cmd", "cr", "-cert", str(write_pem(tmp_path, "c.pem", certificate)),
        "-key", str(write_pem(tmp_path, "c.key", key)), "-newkey", str(write_pem(tmp_path, "n.key", p256())),
        "-certout", str(tmp_path / "out.pem"),
    )  # fmt: skip
    message = load_pki_message(der)
    assert message.protection_kind == "signature"
    assert message.extra_certs[0] == certificate
    assert verify_signature_protection(message, [cmp_ca().certificate], now=now()) == certificate
    refused(FailInfo.signerNotTrusted, verify_signature_protection, message, [foreign_ca().certificate], now=now())


# --- hostile input: each a typed refusal -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x00",
        b"garbage, not DER at all",
        b"\x30\x80" + b"\x00" * 8,  # indefinite length
        b"\x30\x81\x03\x02\x01\x02",  # a length that is not minimal
        b"\x30\x03\x02\x01\x02",  # a SEQUENCE with no body
        b"\x31\x00",
        b"\x30\x84\xff\xff\xff\xff",  # a length past the end
    ],
    ids=["empty", "zero", "text", "indefinite", "non-minimal", "header-only", "set", "huge-length"],
)
def test_garbage_is_bad_data_format(der: bytes) -> None:
    error = refused(FailInfo.badDataFormat, load_pki_message, der)
    assert error.header is None


def test_every_truncation_of_a_good_message_is_refused_as_such() -> None:
    der = ir()
    for cut in range(len(der)):
        with pytest.raises(CmpError) as caught:
            load_pki_message(der[:cut])
        assert caught.value.fail_info in (FailInfo.badDataFormat, FailInfo.badRequest)


def test_bytes_after_the_message_are_refused() -> None:
    refused(FailInfo.badDataFormat, load_pki_message, ir() + b"\x00")


def test_a_message_over_64_kib_is_refused_before_it_is_read() -> None:
    refused(FailInfo.badDataFormat, load_pki_message, tlv(0x30, b"\x00" * MAX_MESSAGE_BYTES))


@pytest.mark.parametrize("pvno", [0, 1, 4, 1000])
def test_only_cmp2000_and_cmp2021_are_spoken(pvno: int) -> None:
    error = refused(FailInfo.unsupportedVersion, load_pki_message, ir(pvno=pvno))
    assert error.header is not None  # so the error answer carries the transaction id


def test_cmp2021_is_read() -> None:
    assert load_pki_message(ir(pvno=3)).header.pvno == 3


@pytest.mark.parametrize("nonce", [b"short", b"x" * 15, b"y" * 65])
def test_a_sender_nonce_of_less_than_128_bits_is_bad_sender_nonce(nonce: bytes) -> None:
    refused(FailInfo.badSenderNonce, load_pki_message, ir(sender_nonce=nonce))


@pytest.mark.parametrize("body_type", ["ip", "cp", "krr", "ccr", "nested", "pollReq", "error", "pkiconf", "popdecr"])
def test_a_body_a_client_does_not_send_here_is_bad_request(body_type: str) -> None:
    error = refused(FailInfo.badRequest, load_pki_message, request(body_type, b"\x30\x00", Mac(b"s")))
    assert error.header is not None


def test_a_body_tag_outside_pki_body_is_bad_request() -> None:
    header, body, *rest = split(ir())
    unknown = bytes((0xBE,)) + body[1][1:]  # [30]: PKIBody stops at [26]
    refused(FailInfo.badRequest, load_pki_message, tlv(0x30, header[1], unknown, *(part for _, part in rest)))


def test_an_unreadable_extra_certificate_is_bad_data_format() -> None:
    key, certificate = device()
    der = request("genm", general_message(), Signature(key, certificate))
    good = certificate.public_bytes(Encoding.DER)
    broken = der.replace(good, good[:40] + bytes(len(good) - 40))
    refused(FailInfo.badDataFormat, load_pki_message, broken)


# --- MAC protection ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [PBM, PBMAC1], ids=["PasswordBasedMac", "PBMAC1"])
def test_a_mac_verifies_with_its_secret_and_not_with_another(algorithm: object) -> None:
    message = load_pki_message(ir(Mac(b"right secret", algorithm=algorithm)))  # type: ignore[arg-type]
    verify_mac_protection(message, b"right secret")
    refused(FailInfo.badMessageCheck, verify_mac_protection, message, b"wrong secret")
    refused(FailInfo.badMessageCheck, verify_mac_protection, message, b"")


def test_a_changed_byte_anywhere_in_the_protected_part_breaks_the_mac() -> None:
    der = ir(Mac(b"secret"))
    message = load_pki_message(der)
    start = der.index(message.protected_part[4:40])
    for position in range(start, start + 36):
        changed = bytearray(der)
        changed[position] ^= 0x01
        try:
            tampered = load_pki_message(bytes(changed))
        except CmpError:
            continue  # no longer reads at all: refused as well
        refused(FailInfo.badMessageCheck, verify_mac_protection, tampered, b"secret")


@pytest.mark.parametrize("iterations", [1, MIN_ITERATIONS - 1, MAX_ITERATIONS + 1, 10**9])
def test_an_iteration_count_out_of_bounds_is_bad_alg(iterations: int) -> None:
    for algorithm in (replace(PBM, iterations=iterations), replace(PBMAC1, iterations=iterations)):
        refused(FailInfo.badAlg, load_pki_message, ir(Mac(b"s", algorithm=algorithm), protection_value=b"x" * 20))


def test_pbm_with_an_unknown_one_way_function_is_bad_alg() -> None:
    md5 = replace(PBM, owf=hashes.MD5(), owf_oid="1.2.840.113549.2.5")
    refused(FailInfo.badAlg, load_pki_message, ir(Mac(b"s", algorithm=md5)))


def test_an_unprotected_request_is_wrong_integrity() -> None:
    message = load_pki_message(request("ir", cert_req_messages(p256(), build_subject("a")), None))
    assert message.protection_kind is None
    refused(FailInfo.wrongIntegrity, verify_mac_protection, message, b"s")
    refused(FailInfo.wrongIntegrity, verify_signature_protection, message, [cmp_ca().certificate], now=now())


def test_a_signed_request_is_not_taken_as_mac_protected_nor_the_reverse() -> None:
    key, certificate = device()
    refused(FailInfo.wrongIntegrity, verify_mac_protection, load_pki_message(ir(Signature(key, certificate))), b"s")
    refused(
        FailInfo.wrongIntegrity,
        verify_signature_protection,
        load_pki_message(ir(Mac(b"s"))),
        [cmp_ca().certificate],
        now=now(),
    )


def test_pbmac1_agrees_with_openssls_pbkdf2_and_hmac(tmp_path: Path) -> None:
    """The key derivation and MAC, checked against OpenSSL's own (openssl kdf, openssl mac)."""
    data = b"the protected part"
    (tmp_path / "data").write_bytes(data)
    key = subprocess.run(
        [openssl(), "kdf", "-keylen", "32", "-kdfopt", "digest:SHA256", "-kdfopt", "pass:secret",
         "-kdfopt", f"hexsalt:{PBMAC1.salt.hex()}", "-kdfopt", f"iter:{PBMAC1.iterations}", "PBKDF2"],
        capture_output=True, text=True, check=True,
    ).stdout.strip().replace(":", "")  # fmt: skip
    mac = subprocess.run(
        [openssl(), "mac", "-digest", "SHA256", "-macopt", f"hexkey:{key}", "-in", str(tmp_path / "data"), "HMAC"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert compute_mac(PBMAC1, b"secret", data).hex().upper() == mac.upper()


# --- signature protection ----------------------------------------------------------------------------------------


def test_a_signature_by_a_certificate_of_this_ca_verifies_and_names_the_signer() -> None:
    key, certificate = device()
    message = load_pki_message(ir(Signature(key, certificate)))
    assert verify_signature_protection(message, [cmp_ca().certificate], now=now()) == certificate


def test_a_foreign_cas_certificate_is_signer_not_trusted() -> None:
    key, certificate = foreign_ca().issue("device.test")
    message = load_pki_message(ir(Signature(key, certificate)))
    refused(FailInfo.signerNotTrusted, verify_signature_protection, message, [cmp_ca().certificate], now=now())


def test_a_signature_by_another_key_is_bad_message_check() -> None:
    _, certificate = device()
    message = load_pki_message(ir(Signature(p256(), certificate)))
    refused(FailInfo.badMessageCheck, verify_signature_protection, message, [cmp_ca().certificate], now=now())


def test_a_sender_that_is_not_the_signers_subject_is_bad_message_check() -> None:
    key, certificate = device()
    message = load_pki_message(ir(Signature(key, certificate), sender=build_subject("someone.else")))
    refused(FailInfo.badMessageCheck, verify_signature_protection, message, [cmp_ca().certificate], now=now())


def test_an_expired_signer_is_not_trusted() -> None:
    key, certificate = cmp_ca().issue("old.test", not_before=now() - dt.timedelta(days=40), days=10)
    message = load_pki_message(ir(Signature(key, certificate)))
    refused(FailInfo.signerNotTrusted, verify_signature_protection, message, [cmp_ca().certificate], now=now())


def test_a_signer_without_digital_signature_is_not_trusted() -> None:
    """openssl cmp insists on digitalSignature in a CMP signer's keyUsage; so does this CA."""
    key, ca = p256(), cmp_ca()
    usage = x509.KeyUsage(False, False, True, False, False, False, False, False, False)  # keyEncipherment only
    certificate = (
        x509.CertificateBuilder()
        .subject_name(build_subject("signer.test"))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now() - dt.timedelta(minutes=5))
        .not_valid_after(now() + dt.timedelta(days=1))
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    message = load_pki_message(ir(Signature(key, certificate)))
    refused(FailInfo.signerNotTrusted, verify_signature_protection, message, [ca.certificate], now=now())


def test_a_message_time_far_from_ours_is_bad_time() -> None:
    message = load_pki_message(ir(when=now() - dt.timedelta(hours=1)))
    check_message_time(message.header, now=now() - dt.timedelta(hours=1), tolerance=dt.timedelta(minutes=5))
    refused(FailInfo.badTime, check_message_time, message.header, now=now(), tolerance=dt.timedelta(minutes=5))


def test_a_message_time_that_is_no_time_is_bad_data_format() -> None:
    when = dt.datetime(2031, 12, 24, 18, 30, 0, tzinfo=dt.UTC)
    good = b"20311224183000Z"
    der = ir(Mac(b"s"), when=when)
    assert good in der
    error = refused(FailInfo.badDataFormat, load_pki_message, der.replace(good, b"20311324183000Z"))
    assert error.header is not None


def test_an_extra_certificate_that_cryptography_would_only_warn_about_or_read_late_is_bad_data_format() -> None:
    """Found by the fuzzer: a negative serial (cryptography warns), a broken subject (cryptography parses it on
    first use, long after loading), a repeated extension (cryptography raises DuplicateExtension)."""
    key, certificate = device()
    der = request("genm", general_message(), Signature(key, certificate))
    good = certificate.public_bytes(Encoding.DER)
    serial = certificate.serial_number.to_bytes(20, "big")
    negative = good.replace(serial, bytes((serial[0] | 0x80,)) + serial[1:], 1)
    subject = certificate.subject.public_bytes()
    broken_subject = good.replace(subject, subject.replace(b"\x0c\x0bdevice.test", b"\x0d\x0bdevice.test"), 1)
    # extendedKeyUsage's OID made keyUsage's: two keyUsage extensions (DuplicateExtension, not a ValueError)
    doubled = good.replace(bytes.fromhex("0603551d25"), bytes.fromhex("0603551d0f"), 1)
    for broken in (negative, broken_subject, doubled):
        assert broken != good
        refused(FailInfo.badDataFormat, load_pki_message, der.replace(good, broken))


def test_the_recipient_is_this_ca_or_the_null_dn(tmp_path: Path) -> None:
    key = write_pem(tmp_path, "new.key", p256())
    asked = ["-cmd", "ir", "-ref", "r", "-secret", "pass:s", "-subject", "/CN=a", "-newkey", str(key), "-certout", "c"]
    ours = [cmp_ca().certificate.subject, build_subject("cmp-ra.test")]
    check_recipient(load_pki_message(openssl_request(tmp_path, *asked)).header, ours)  # no -recipient: NULL-DN
    check_recipient(load_pki_message(openssl_request(tmp_path, *asked, "-recipient", "/CN=cmp-ra.test")).header, ours)
    other = load_pki_message(openssl_request(tmp_path, *asked, "-recipient", "/CN=Another CA")).header
    refused(FailInfo.wrongAuthority, check_recipient, other, ours)
