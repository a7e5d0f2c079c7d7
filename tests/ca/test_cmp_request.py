"""What a CMP request asks for: ir/cr/kur (CRMF), p10cr, certConf, rr and genm, as `openssl cmp` writes them and
as a broken or hostile client might; each refusal a CmpError with RFC 9483's bit."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key

from service.ca.cmp_confirm import PendingConfirmation, check_confirmation, read_cert_confirmation
from service.ca.cmp_failures import CmpError, FailInfo
from service.ca.cmp_message import load_pki_message
from service.ca.cmp_request import (
    P10CR_CERT_REQ_ID,
    read_certification_request,
    read_general_message,
    read_revocation_request,
)
from service.ca.cmp_response import SignedBy, build_response, certification_response
from service.ca.csr import build_csr
from service.ca.names import build_subject
from service.ca.policy import decide
from service.ca.profiles import BUILTIN_PROFILES
from tests.ca.cmp_helpers import (
    Mac,
    Signature,
    cert_conf,
    cert_req_messages,
    cmp_ca,
    device,
    general_message,
    openssl_request,
    openssl_requests,
    ra,
    request,
    revocation_request,
    write_pem,
)
from tests.helpers import now, p256

SECRET = Mac(b"secret")


def rejected(bit: FailInfo, call: object, *args: object, **kwargs: object) -> CmpError:
    with pytest.raises(CmpError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    assert caught.value.fail_info == bit, caught.value.detail
    return caught.value


def ir_message(body: bytes, body_type: str = "ir") -> object:
    return load_pki_message(request(body_type, body, SECRET))


# --- ir, cr, kur -------------------------------------------------------------------------------------------------


def test_an_openssl_ir_asks_for_its_subject_names_key_and_days(tmp_path: Path) -> None:
    key = p256()
    der = openssl_request(
        tmp_path, "-cmd", "ir", "-ref", "r", "-secret", "pass:s", "-subject", "/CN=dev1.test/O=Example",
        "-newkey", str(write_pem(tmp_path, "k.pem", key)), "-sans", "dev1.test 10.1.2.3", "-days", "30",
        "-certout", str(tmp_path / "c.pem"),
    )  # fmt: skip
    asked = read_certification_request(load_pki_message(der))
    assert asked.cert_req_id == 0
    assert asked.request.subject.rfc4514_string() == "O=Example,CN=dev1.test"
    assert asked.request.common_name == "dev1.test"
    assert [str(name.value) for name in asked.request.sans] == ["dev1.test", "10.1.2.3"]
    assert asked.request.public_key == key.public_key()
    assert asked.validity_days(now()) == 30
    assert asked.old_certificate is None
    spec = decide(asked.request, BUILTIN_PROFILES["client"], asked.validity_days(now()))  # as POST /csr
    assert spec.common_name == "dev1.test"


def test_an_openssl_kur_names_the_certificate_it_updates(tmp_path: Path) -> None:
    key, certificate = device()
    der = openssl_request(
        tmp_path, "-cmd", "kur", "-cert", str(write_pem(tmp_path, "c.pem", certificate)),
        "-key", str(write_pem(tmp_path, "c.key", key)), "-newkey", str(write_pem(tmp_path, "n.key", p256())),
        "-certout", str(tmp_path / "out.pem"),
    )  # fmt: skip
    asked = read_certification_request(load_pki_message(der))
    assert asked.old_certificate == (certificate.issuer, certificate.serial_number)
    assert asked.request.subject == certificate.subject  # openssl keeps the old subject


def test_an_openssl_p10cr_carries_its_csr(tmp_path: Path) -> None:
    key = p256()
    csr = build_csr(key, "dev1.test", ["dev1.test"])
    (tmp_path / "r.csr").write_bytes(csr.public_bytes(Encoding.PEM))
    der = openssl_request(
        tmp_path, "-cmd", "p10cr", "-ref", "r", "-secret", "pass:s", "-csr", str(tmp_path / "r.csr"),
        "-certout", str(tmp_path / "c.pem"),
    )  # fmt: skip
    asked = read_certification_request(load_pki_message(der))
    assert asked.cert_req_id == P10CR_CERT_REQ_ID == -1
    assert asked.request.common_name == "dev1.test"
    assert asked.request.public_key == key.public_key()


@pytest.mark.parametrize("popo", ["0", "-1"], ids=["raVerified", "none"])
def test_an_openssl_ir_without_a_signature_pop_is_bad_pop(tmp_path: Path, popo: str) -> None:
    der = openssl_request(
        tmp_path, "-cmd", "ir", "-ref", "r", "-secret", "pass:s", "-subject", "/CN=dev1.test", "-popo", popo,
        "-newkey", str(write_pem(tmp_path, "k.pem", p256())), "-certout", str(tmp_path / "c.pem"),
    )  # fmt: skip
    error = rejected(FailInfo.badPOP, read_certification_request, load_pki_message(der))
    assert error.body_type == "ir"  # answered with a rejected ip, not an error message


def test_ra_verified_passes_only_when_the_caller_allows_it() -> None:
    message = ir_message(cert_req_messages(p256(), build_subject("a.test"), pop="raVerified"))
    rejected(FailInfo.badPOP, read_certification_request, message)
    assert read_certification_request(message, allow_ra_verified=True).request.common_name == "a.test"  # type: ignore[arg-type]


def test_a_pop_signed_by_another_key_is_bad_pop() -> None:
    message = ir_message(cert_req_messages(p256(), build_subject("a.test"), pop_key=p256()))
    rejected(FailInfo.badPOP, read_certification_request, message)


def test_a_template_without_a_public_key_is_bad_cert_template() -> None:
    message = ir_message(cert_req_messages(p256(), build_subject("a.test"), public_key=False, pop=None))
    rejected(FailInfo.badCertTemplate, read_certification_request, message)


def test_a_template_without_a_subject_is_bad_cert_template() -> None:
    rejected(FailInfo.badCertTemplate, read_certification_request, ir_message(cert_req_messages(p256(), None)))


@pytest.mark.parametrize(("count", "cert_req_id"), [(2, 0), (1, 1), (1, -1)])
def test_exactly_one_request_with_cert_req_id_0(count: int, cert_req_id: int) -> None:
    body = cert_req_messages(p256(), build_subject("a.test"), count=count, cert_req_id=cert_req_id)
    rejected(FailInfo.badRequest, read_certification_request, ir_message(body))


def test_a_kur_without_old_cert_id_is_bad_cert_id() -> None:
    key, certificate = device()
    body = cert_req_messages(p256(), certificate.subject)
    message = load_pki_message(request("kur", body, Signature(key, certificate)))
    rejected(FailInfo.badCertId, read_certification_request, message)


def test_a_body_that_is_not_crmf_is_bad_data_format() -> None:
    rejected(FailInfo.badDataFormat, read_certification_request, ir_message(b"\x30\x03\x02\x01\x00"))


def test_a_p10cr_whose_signature_does_not_verify_is_bad_pop() -> None:
    csr = bytearray(build_csr(p256(), "a.test", []).public_bytes(Encoding.DER))
    csr[-3] ^= 0x01
    rejected(FailInfo.badPOP, read_certification_request, ir_message(bytes(csr), "p10cr"))


def test_a_p10cr_that_is_no_csr_is_bad_data_format() -> None:
    rejected(FailInfo.badDataFormat, read_certification_request, ir_message(b"\x30\x00", "p10cr"))


# --- certConf ----------------------------------------------------------------------------------------------------


def pending_for(certificate: x509.Certificate, nonce: bytes = b"n" * 16, tid: bytes = b"t" * 16) -> PendingConfirmation:
    return PendingConfirmation(tid, nonce, 0, certificate.public_bytes(Encoding.DER))


def test_an_openssl_cert_conf_confirms_the_certificate_we_sent(tmp_path: Path) -> None:
    """openssl takes our ip from a file (-rspin) for its own ir (-reqin) and answers with its certConf."""
    key = write_pem(tmp_path, "k.pem", p256())
    arguments = ("-cmd", "ir", "-ref", "r", "-secret", "pass:s", "-subject", "/CN=dev1.test", "-newkey", str(key))
    ir_der = openssl_request(tmp_path, *arguments, "-certout", str(tmp_path / "c.pem"))
    ir = load_pki_message(ir_der)
    _, certificate = cmp_ca().issue("dev1.test", load_pem_private_key(key.read_bytes(), None))  # type: ignore[arg-type]
    ra_key, ra_certificate = ra()
    body = certification_response(ir, 0, certificate)
    ip = build_response(ir.header, body, SignedBy(ra_key, ra_certificate), now=now())
    (tmp_path / "ir.der").write_bytes(ir_der)
    (tmp_path / "ip.der").write_bytes(ip.der)
    _, der = openssl_requests(
        tmp_path, 2, *arguments, "-certout", str(tmp_path / "c.pem"), "-reqin", str(tmp_path / "ir.der"),
        "-rspin", str(tmp_path / "ip.der"), "-srvcert", str(write_pem(tmp_path, "ra.pem", ra_certificate)),
    )  # fmt: skip
    message = load_pki_message(der)
    assert message.body_type == "certConf"
    pending = PendingConfirmation(ir.header.transaction_id, ip.sender_nonce, 0, certificate.public_bytes(Encoding.DER))
    confirmation = check_confirmation(message, pending)
    assert confirmation.accepted
    assert confirmation.cert_hash == hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest()


def test_a_cert_conf_is_checked_against_the_transaction_nonce_request_id_and_hash() -> None:
    _, certificate = device()
    digest = hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest()
    pending = pending_for(certificate)

    def conf(body: bytes, *, tid: bytes = b"t" * 16, nonce: bytes | None = b"n" * 16) -> object:
        return load_pki_message(request("certConf", body, SECRET, transaction_id=tid, recip_nonce=nonce))

    assert check_confirmation(conf(cert_conf(digest)), pending).accepted  # type: ignore[arg-type]
    rejected(FailInfo.badRequest, check_confirmation, conf(cert_conf(digest), tid=b"u" * 16), pending)
    rejected(FailInfo.badRecipientNonce, check_confirmation, conf(cert_conf(digest), nonce=b"m" * 16), pending)
    rejected(FailInfo.badRecipientNonce, check_confirmation, conf(cert_conf(digest), nonce=None), pending)
    rejected(FailInfo.badCertId, check_confirmation, conf(cert_conf(digest, cert_req_id=1)), pending)
    rejected(FailInfo.badCertId, check_confirmation, conf(cert_conf(hashlib.sha256(b"other").digest())), pending)
    refusal = check_confirmation(conf(cert_conf(digest, rejected=True)), pending)  # type: ignore[arg-type]
    assert not refusal.accepted


def test_a_cert_conf_with_two_statuses_is_bad_request() -> None:
    body = cert_conf(b"h" * 32)
    doubled = body[:1] + bytes((body[1] * 2,)) + body[2:] + body[2:]
    rejected(FailInfo.badRequest, read_cert_confirmation, load_pki_message(request("certConf", doubled, SECRET)))


# --- rr ----------------------------------------------------------------------------------------------------------


def test_an_openssl_rr_names_issuer_serial_and_reason(tmp_path: Path) -> None:
    key, certificate = device()
    der = openssl_request(
        tmp_path, "-cmd", "rr", "-cert", str(write_pem(tmp_path, "c.pem", certificate)),
        "-key", str(write_pem(tmp_path, "c.key", key)), "-oldcert", str(tmp_path / "c.pem"), "-revreason", "1",
    )  # fmt: skip
    asked = read_revocation_request(load_pki_message(der))
    assert (asked.issuer, asked.serial_number) == (certificate.issuer, certificate.serial_number)
    assert asked.reason == x509.ReasonFlags.key_compromise


def test_an_rr_without_a_reason_has_none() -> None:
    _, certificate = device()
    message = load_pki_message(request("rr", revocation_request(certificate.issuer, 5), SECRET))
    assert read_revocation_request(message).reason is None


@pytest.mark.parametrize(("issuer", "serial"), [(None, 5), (build_subject("CA"), None)])
def test_an_rr_that_does_not_name_issuer_and_serial_is_bad_cert_id(
    issuer: x509.Name | None, serial: int | None
) -> None:
    message = load_pki_message(request("rr", revocation_request(issuer, serial), SECRET))
    error = rejected(FailInfo.badCertId, read_revocation_request, message)
    assert error.body_type == "rr"  # answered with a rejected rp


@pytest.mark.parametrize("reason", [7, 11, 200])
def test_an_rr_with_a_reason_rfc_5280_does_not_define_is_bad_request(reason: int) -> None:
    message = load_pki_message(request("rr", revocation_request(build_subject("CA"), 5, reason), SECRET))
    rejected(FailInfo.badRequest, read_revocation_request, message)


# --- genm --------------------------------------------------------------------------------------------------------


def test_an_openssl_genm_asks_for_its_infotype(tmp_path: Path) -> None:
    der = openssl_request(tmp_path, "-cmd", "genm", "-ref", "r", "-secret", "pass:s", "-infotype", "caCerts")
    assert read_general_message(load_pki_message(der)) == [("1.3.6.1.5.5.7.4.17", None)]


def test_a_genm_without_questions_reads_as_none() -> None:
    assert read_general_message(load_pki_message(request("genm", general_message(), SECRET))) == []


def test_a_reader_refuses_another_body() -> None:
    message = load_pki_message(request("genm", general_message(), SECRET))
    for reader in (read_certification_request, read_cert_confirmation, read_revocation_request):
        rejected(FailInfo.badRequest, reader, message)
