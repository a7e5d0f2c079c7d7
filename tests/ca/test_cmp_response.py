"""CMP answers: what they carry (header, body, protection, extraCerts), and that `openssl cmp` takes them.

openssl reads our answers offline: it writes its request (-reqout), we answer it, and it reads the answer from a
file (-rspin), validating the signature and its signer (keyUsage digitalSignature), the status, certReqId and the
new certificate. Not the transactionID nor the recipNonce: with -rspin openssl skips those two checks (it would
see its fresh request's, not the one we answered); test_cmp_http.py has openssl check them over HTTP.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from service.ca.cmp_asn1 import decode
from service.ca.cmp_der import split
from service.ca.cmp_failures import CmpError, FailInfo, as_cmp_error
from service.ca.cmp_general import GeneralAnswers, answer_general_message, general_response
from service.ca.cmp_message import CmpMessage, load_pki_message
from service.ca.cmp_names import directory_name
from service.ca.cmp_protection import compute_mac, load_mac_algorithm, verify_signature
from service.ca.cmp_request import read_general_message
from service.ca.cmp_response import (
    MacWith,
    SignedBy,
    build_response,
    certification_response,
    confirmation,
    refusal_body,
    revocation_response,
)
from service.ca.names import build_subject
from service.errors import NotFoundError, PolicyError, UnavailableError
from tests.ca.cmp_helpers import (
    PBMAC1,
    Mac,
    cert_req_messages,
    cmp_ca,
    general_message,
    openssl,
    openssl_request,
    ra,
    read_answer,
    request,
    write_pem,
)
from tests.helpers import now, p256

SECRET = b"one-time secret"


def an_ir(*, implicit_confirm: bool = False, protection: Mac | None = None) -> CmpMessage:
    body = cert_req_messages(p256(), build_subject("dev1.test"))
    return load_pki_message(request("ir", body, protection or Mac(SECRET), implicit_confirm=implicit_confirm))


def signed_by(kind: str = "ec") -> SignedBy:
    key, certificate = ra(kind)
    return SignedBy(key, certificate)


# --- what an answer carries --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_an_ip_answers_the_ir_and_is_signed_by_the_ra(kind: str) -> None:
    ir = an_ir()
    _, certificate = cmp_ca().issue("dev1.test")
    protection = signed_by(kind)
    prepared = build_response(ir.header, certification_response(ir, 0, certificate), protection, now=now())
    answer = read_answer(prepared.der)
    header = answer.header
    assert answer.body_type == "ip"
    assert int(header["pvno"]) == 2
    assert header["sender"].asOctets() == directory_name(protection.certificate.subject)  # the RA...
    assert header["recipient"].asOctets() == ir.header.sender  # ...answering the request's sender
    assert header["transactionID"].asOctets() == ir.header.transaction_id
    assert header["recipNonce"].asOctets() == ir.header.sender_nonce
    assert header["senderNonce"].asOctets() == prepared.sender_nonce
    assert len(prepared.sender_nonce) == 16 and prepared.sender_nonce != ir.header.sender_nonce
    ski = protection.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert header["senderKID"].asOctets() == ski
    assert not header["generalInfo"].isValue  # implicit confirmation not granted: the client must confirm
    assert abs(header["messageTime"].asDateTime - now()) < dt.timedelta(minutes=1)
    verify_signature(
        protection.certificate.public_key(), answer.protection_algorithm, answer.protected_part, answer.protection
    )
    assert answer.extra_certs == [protection.certificate]
    assert answer.certificate() == certificate
    assert int(answer.status["status"]) == 0
    assert int(answer.body["response"][0]["certReqId"]) == 0


def test_building_answers_leaves_the_shared_asn1_specs_untouched() -> None:
    """The specs in cmp_asn1 are module-level schema objects: a builder that filled one in instead of a clone
    would leak one answer's fields (a recipNonce, an implicitConfirm) into the next, across threads."""
    from pyasn1.type.base import Asn1Item

    from service.ca import cmp_asn1

    ir = an_ir(implicit_confirm=True)
    _, certificate = cmp_ca().issue("dev1.test")
    for body in (certification_response(ir, 0, certificate, ca_pubs=[cmp_ca().certificate]), revocation_response()):
        build_response(ir.header, body, signed_by(), now=now(), implicit_confirm=True)
    build_response(ir.header, refusal_body(CmpError(FailInfo.badPOP, "no")), signed_by(), now=now())
    build_response(ir.header, general_response([("1.3.6.1.5.5.7.4.18", None)]), signed_by(), now=now())
    specs = {name: value for name, value in vars(cmp_asn1).items() if name.isupper() and isinstance(value, Asn1Item)}
    assert specs and all(not spec.isValue for name, spec in specs.items() if not name.startswith("ID_")), [
        name for name, spec in specs.items() if spec.isValue and not name.startswith("ID_")
    ]


def test_two_answers_never_share_a_sender_nonce() -> None:
    ir = an_ir()
    body = confirmation()
    nonces = {build_response(ir.header, body, signed_by(), now=now()).sender_nonce for _ in range(20)}
    assert len(nonces) == 20


@pytest.mark.parametrize(("asked", "allowed"), [(True, True), (True, False), (False, False)])
def test_implicit_confirmation_is_granted_only_when_asked_and_allowed(asked: bool, allowed: bool) -> None:
    ir = an_ir(implicit_confirm=asked)
    _, certificate = cmp_ca().issue("dev1.test")
    body = certification_response(ir, 0, certificate)
    granted = ir.header.implicit_confirm and allowed
    answer = read_answer(build_response(ir.header, body, signed_by(), now=now(), implicit_confirm=granted).der)
    info = answer.header["generalInfo"]
    types = [str(item["infoType"]) for item in info] if info.isValue else []
    assert types == (["1.3.6.1.5.5.7.4.13"] if asked and allowed else [])


def test_extra_certs_are_the_signer_its_chain_then_the_new_certificates_chain_and_ca_pubs_the_root() -> None:
    ir = an_ir()
    ca = cmp_ca()
    _, intermediate = ca.issue("intermediate.test")  # any certificate will do to see the order
    _, certificate = ca.issue("dev1.test")
    key, ra_certificate = ra()
    body = certification_response(ir, 0, certificate, chain=[intermediate], ca_pubs=[ca.certificate])
    answer = read_answer(
        build_response(ir.header, body, SignedBy(key, ra_certificate, (ca.certificate,)), now=now()).der
    )
    assert answer.extra_certs == [ra_certificate, ca.certificate, intermediate]
    same_chain = SignedBy(key, ra_certificate, (intermediate,))  # one issuing CA for both: listed once
    answer = read_answer(build_response(ir.header, body, same_chain, now=now()).der)
    assert answer.extra_certs == [ra_certificate, intermediate]
    assert [x509.load_der_x509_certificate(c.asOctets()) for c in answer.body["caPubs"]] == [ca.certificate]


@pytest.mark.parametrize("kind", ["PasswordBasedMac", "PBMAC1"])
def test_a_mac_answer_uses_the_requests_algorithm_with_a_new_salt_and_the_same_secret(kind: str) -> None:
    ir = an_ir(protection=Mac(SECRET, algorithm=PBMAC1) if kind == "PBMAC1" else Mac(SECRET))
    assert ir.protection_algorithm is not None
    algorithm = load_mac_algorithm(ir.protection_algorithm)
    protection = MacWith(SECRET, algorithm, build_subject("CMP Test Root"), b"ref-1")
    answer = read_answer(build_response(ir.header, confirmation(), protection, now=now()).der)
    used = load_mac_algorithm(answer.protection_algorithm)
    assert type(used) is type(algorithm) and used.iterations == algorithm.iterations
    assert used.salt != algorithm.salt
    assert compute_mac(used, SECRET, answer.protected_part) == answer.protection
    assert compute_mac(used, b"another secret", answer.protected_part) != answer.protection
    assert answer.header["senderKID"].asOctets() == b"ref-1"
    assert answer.extra_certs == []


# --- refusals ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body_type", "answer_type", "cert_req_id"),
    [("ir", "ip", 0), ("cr", "cp", 0), ("kur", "kup", 0), ("p10cr", "cp", -1), ("rr", "rp", None)],
)
def test_a_rejected_request_is_answered_in_kind(body_type: str, answer_type: str, cert_req_id: int | None) -> None:
    error = CmpError(FailInfo.badCertTemplate, "the CN must be 'dev1.test'", body_type=body_type)
    answer = read_answer(build_response(an_ir().header, refusal_body(error), signed_by(), now=now()).der)
    assert answer.body_type == answer_type
    assert int(answer.status["status"]) == 2  # rejection
    assert answer.fail_info == {FailInfo.badCertTemplate}
    assert str(answer.status["statusString"][0]) == "the CN must be 'dev1.test'"
    if cert_req_id is not None:
        assert int(answer.body["response"][0]["certReqId"]) == cert_req_id
        assert not answer.body["response"][0]["certifiedKeyPair"].isValue


@pytest.mark.parametrize("bit", list(FailInfo))
def test_an_error_message_carries_exactly_its_fail_info_bit(bit: FailInfo) -> None:
    answer = read_answer(build_response(an_ir().header, refusal_body(CmpError(bit, "no")), signed_by(), now=now()).der)
    assert answer.body_type == "error"
    assert answer.fail_info == {bit}


def test_an_answer_to_a_message_without_a_header_still_has_a_transaction_id() -> None:
    error = CmpError(FailInfo.badDataFormat, "not a DER PKIMessage")
    answer = read_answer(build_response(None, refusal_body(error), signed_by(), now=now()).der)
    assert len(answer.header["transactionID"].asOctets()) == 16
    assert answer.header["recipient"].asOctets() == b"\xa4\x02\x30\x00"
    assert not answer.header["recipNonce"].isValue


@pytest.mark.parametrize(
    ("error", "bit"),
    [
        (PolicyError(["the CN must be 'a'"]), FailInfo.badCertTemplate),
        (NotFoundError("no such certificate"), FailInfo.badCertId),
        (UnavailableError("database down"), FailInfo.systemUnavail),
        (RuntimeError("a bug, with a secret in it"), FailInfo.systemFailure),
    ],
)
def test_the_authoritys_refusals_map_to_bits_and_a_bug_says_nothing(error: Exception, bit: FailInfo) -> None:
    ir = an_ir()
    mapped = as_cmp_error(error, header=ir.header, body_type=ir.body_type)
    assert mapped.fail_info == bit
    assert "secret" not in mapped.detail
    answer = read_answer(build_response(mapped.header, refusal_body(mapped), signed_by(), now=now()).der)
    assert answer.header["transactionID"].asOctets() == ir.header.transaction_id
    assert answer.body_type == ("error" if bit == FailInfo.systemFailure else "ip")
    assert answer.fail_info == {bit}


def test_an_rp_accepts() -> None:
    answer = read_answer(build_response(an_ir().header, revocation_response(), signed_by(), now=now()).der)
    assert answer.body_type == "rp" and int(answer.status["status"]) == 0 and answer.fail_info == set()


# --- genp --------------------------------------------------------------------------------------------------------


def genp(*info_types: str, crl: bytes | None = None) -> list[tuple[str, bytes | None]]:
    message = load_pki_message(request("genm", general_message(*info_types), Mac(SECRET)))
    answers = GeneralAnswers([cmp_ca().certificate], key_types=("p256", "rsa"), current_crl=crl)
    return answer_general_message(read_general_message(message), answers)


def test_ca_certs_gives_this_cas_certificates() -> None:
    ((info_type, value),) = genp("1.3.6.1.5.5.7.4.17")
    assert info_type == "1.3.6.1.5.5.7.4.17" and value is not None
    assert [x509.load_der_x509_certificate(der) for _, der in split(value)] == [cmp_ca().certificate]


@pytest.mark.parametrize("asked", ["1.3.6.1.5.5.7.4.20", "1.3.6.1.5.5.7.4.18"], ids=["rootCaCert", "rootCaKeyUpdate"])
def test_root_ca_cert_is_answered_with_no_key_update(asked: str) -> None:
    assert genp(asked) == [("1.3.6.1.5.5.7.4.18", None)]


def test_cert_req_template_names_the_key_types() -> None:
    from pyasn1_modules import rfc4211

    ((info_type, value),) = genp("1.3.6.1.5.5.7.4.19")
    assert info_type == "1.3.6.1.5.5.7.4.19" and value is not None
    _, controls = split(value)
    key_spec = decode(controls[1], rfc4211.Controls())
    assert [str(control["type"]) for control in key_spec] == ["1.3.6.1.5.5.7.5.1.11", "1.3.6.1.5.5.7.5.1.12"]


def test_unknown_questions_get_no_answer_and_known_ones_keep_their_order() -> None:
    answers = genp("1.3.6.1.5.5.7.4.1", "1.3.6.1.5.5.7.4.6", "1.3.6.1.5.5.7.4.2", "1.2.3.4", crl=b"\x30\x00")
    assert [info_type for info_type, _ in answers] == ["1.3.6.1.5.5.7.4.6", "1.3.6.1.5.5.7.4.2"]


# --- openssl cmp takes them --------------------------------------------------------------------------------------


def run_openssl(tmp_path: Path, arguments: list[str], responses: list[bytes]) -> str:
    """openssl cmp taking our answers from files (-rspin); its whole output."""
    names = []
    for index, answer in enumerate(responses):
        (tmp_path / f"a{index}.der").write_bytes(answer)
        names.append(str(tmp_path / f"a{index}.der"))
    result = subprocess.run(
        [openssl(), "cmp", *arguments, "-rspin", ",".join(names)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return result.stdout + result.stderr


def test_openssl_takes_our_ip_with_implicit_confirmation_and_saves_the_certificate(tmp_path: Path) -> None:
    key = p256()
    arguments = [
        "-cmd", "ir", "-ref", "r", "-secret", "pass:s", "-subject", "/CN=dev1.test", "-implicit_confirm",
        "-newkey", str(write_pem(tmp_path, "k.pem", key)), "-certout", str(tmp_path / "cert.pem"),
        "-trusted", str(write_pem(tmp_path, "root.pem", cmp_ca().certificate)),
    ]  # fmt: skip
    ir_der = openssl_request(tmp_path, *arguments)
    ir = load_pki_message(ir_der)
    _, certificate = cmp_ca().issue("dev1.test", key)
    ip = build_response(
        ir.header, certification_response(ir, 0, certificate), signed_by("rsa"), now=now(), implicit_confirm=True
    )
    output = run_openssl(tmp_path, arguments, [ip.der])
    assert "received 1 enrolled certificate(s), saving to file" in output, output
    assert "sending CERTCONF" not in output
    assert x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes()) == certificate


def test_openssl_prints_the_fail_info_of_a_rejected_ip(tmp_path: Path) -> None:
    arguments = [
        "-cmd", "ir", "-ref", "r", "-secret", "pass:s", "-subject", "/CN=dev1.test",
        "-newkey", str(write_pem(tmp_path, "k.pem", p256())), "-certout", str(tmp_path / "cert.pem"),
        "-trusted", str(write_pem(tmp_path, "root.pem", cmp_ca().certificate)),
    ]  # fmt: skip
    ir_der = openssl_request(tmp_path, *arguments)
    ir = load_pki_message(ir_der)
    refusal = refusal_body(ir.rejection(FailInfo.badCertTemplate, "the CN must be 'device1'"))
    output = run_openssl(tmp_path, arguments, [build_response(ir.header, refusal, signed_by(), now=now()).der])
    assert "PKIStatus: rejection; PKIFailureInfo: badCertTemplate; StatusString: \"the CN must be 'device1'\"" in output


def test_openssl_refuses_an_answer_signed_by_another_key(tmp_path: Path) -> None:
    """The RA's certificate, another key's signature: openssl's check of the protection fails (the negative
    control of the tests above)."""
    arguments = [
        "-cmd", "ir", "-ref", "r", "-secret", "pass:s", "-subject", "/CN=dev1.test",
        "-newkey", str(write_pem(tmp_path, "k.pem", p256())), "-certout", str(tmp_path / "cert.pem"),
        "-trusted", str(write_pem(tmp_path, "root.pem", cmp_ca().certificate)),
    ]  # fmt: skip
    ir_der = openssl_request(tmp_path, *arguments)
    ir = load_pki_message(ir_der)
    key = load_pem_private_key((tmp_path / "k.pem").read_bytes(), None)
    _, certificate = cmp_ca().issue("dev1.test", key)  # type: ignore[arg-type]
    _, ra_certificate = ra()
    forged = SignedBy(p256(), ra_certificate)
    answer = build_response(ir.header, certification_response(ir, 0, certificate), forged, now=now())
    output = run_openssl(tmp_path, arguments, [answer.der])
    assert "error validating protection" in output
    assert "saving to file" not in output


def test_openssl_prints_the_types_in_our_genp(tmp_path: Path) -> None:
    arguments = ["-cmd", "genm", "-ref", "r", "-secret", "pass:s", "-infotype", "caCerts",
                 "-trusted", str(write_pem(tmp_path, "root.pem", cmp_ca().certificate))]  # fmt: skip
    genm_der = openssl_request(tmp_path, *arguments)
    genm = load_pki_message(genm_der)
    answers = answer_general_message(read_general_message(genm), GeneralAnswers([cmp_ca().certificate]))
    genp_der = build_response(genm.header, general_response(answers), signed_by(), now=now()).der
    assert "genp contains ITAV of type: id-it-caCerts" in run_openssl(tmp_path, arguments, [genp_der])


def test_openssl_reads_our_rp(tmp_path: Path) -> None:
    from tests.ca.cmp_helpers import device

    key, certificate = device()
    cert = str(write_pem(tmp_path, "c.pem", certificate))
    arguments = ["-cmd", "rr", "-cert", cert, "-key", str(write_pem(tmp_path, "c.key", key)), "-oldcert", cert,
                 "-trusted", str(write_pem(tmp_path, "root.pem", cmp_ca().certificate))]  # fmt: skip
    rr_der = openssl_request(tmp_path, *arguments)
    rr = load_pki_message(rr_der)
    accepted = build_response(rr.header, revocation_response(), signed_by(), now=now()).der
    assert "revocation accepted (PKIStatus=accepted)" in run_openssl(tmp_path, arguments, [accepted])
    refused = refusal_body(rr.rejection(FailInfo.certRevoked, "the certificate is already revoked"))
    output = run_openssl(tmp_path, arguments, [build_response(rr.header, refused, signed_by(), now=now()).der])
    assert "PKIFailureInfo: certRevoked" in output


def test_openssl_refuses_an_answer_whose_signer_may_not_sign(tmp_path: Path) -> None:
    """The CMP/RA certificate needs keyUsage digitalSignature: the CA's own certificate (keyCertSign, cRLSign
    only) will not do, even with the right key."""
    arguments = [
        "-cmd", "ir", "-ref", "r", "-secret", "pass:s", "-subject", "/CN=dev1.test",
        "-newkey", str(write_pem(tmp_path, "k.pem", p256())), "-certout", str(tmp_path / "cert.pem"),
        "-trusted", str(write_pem(tmp_path, "root.pem", cmp_ca().certificate)),
    ]  # fmt: skip
    ir_der = openssl_request(tmp_path, *arguments)
    ir = load_pki_message(ir_der)
    key = load_pem_private_key((tmp_path / "k.pem").read_bytes(), None)
    _, certificate = cmp_ca().issue("dev1.test", key)  # type: ignore[arg-type]
    as_the_ca = SignedBy(cmp_ca().key, cmp_ca().certificate)
    answer = build_response(ir.header, certification_response(ir, 0, certificate), as_the_ca, now=now())
    output = run_openssl(tmp_path, arguments, [answer.der])
    assert "CMP error: missing key usage digitalsignature" in output, output
    assert "saving to file" not in output
