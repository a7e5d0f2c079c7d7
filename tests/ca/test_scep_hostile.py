"""Hostile and broken pkiMessages: each one a ScepError with the failInfo a CertRep FAILURE carries, and a reply
context exactly when there is a requester to answer. Never another exception."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from pyasn1.codec.ber import decoder
from pyasn1.type import char, univ
from pyasn1_modules import rfc5280, rfc5652

from service.ca.scep_message import MAX_MESSAGE, load_pki_message
from service.ca.scep_reply import build_cert_rep_failure
from service.ca.scep_types import FailInfo, ScepError
from tests.ca.conftest import ScepPki
from tests.ca.scep_device import Device, enc, envelope, read_cert_rep, self_signed
from tests.helpers import now

AES128_OID = bytes.fromhex("0609608648016503040102")


def refused(pki: ScepPki, message: bytes) -> ScepError:
    with pytest.raises(ScepError) as caught:
        load_pki_message(message, pki.ra, now=now())
    error = caught.value
    assert error.detail and "Traceback" not in error.detail
    if error.reply is not None:  # a front door can always answer such a refusal with a CertRep FAILURE
        answer = build_cert_rep_failure(error.reply, pki.ra, error.fail_info, now=now(), text=error.detail)
        rep = read_cert_rep(answer, pki.ra_certificate)
        assert (rep.status, rep.fail_info) == ("2", str(int(error.fail_info)))
    return error


def good(pki: ScepPki, device: Device, **options: object) -> bytes:
    return device.message(19, device.csr("s"), [pki.ra_certificate], **options)  # type: ignore[arg-type]


# --- nobody to answer: an HTTP 400 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [b"", b"\x00", b"garbage" * 10, os.urandom(300), b"\x30\x80" + b"\x30\x80" * 200, b"\x30\x84\xff\xff\xff\xff"],
    ids=["empty", "zero", "text", "random", "deep-indefinite", "huge-length"],
)
def test_garbage_is_a_bad_request_with_nobody_to_answer(scep_pki: ScepPki, message: bytes) -> None:
    error = refused(scep_pki, message)
    assert (error.fail_info, error.reply) == (FailInfo.BAD_REQUEST, None)


def test_every_truncation_of_a_message_is_refused(scep_pki: ScepPki, device: Device) -> None:
    message = good(scep_pki, device)
    for length in [*range(0, 64), *range(64, len(message) - 1, 97), len(message) - 1]:
        error = refused(scep_pki, message[:length])
        assert error.fail_info is FailInfo.BAD_REQUEST
        assert error.reply is None


def test_trailing_bytes_are_refused(scep_pki: ScepPki, device: Device) -> None:
    assert refused(scep_pki, good(scep_pki, device) + b"\x00").fail_info is FailInfo.BAD_REQUEST


def test_a_message_over_the_size_limit_is_refused_before_parsing(scep_pki: ScepPki) -> None:
    error = refused(scep_pki, b"\x30" + b"\x00" * MAX_MESSAGE)
    assert "at most" in error.detail


def test_other_cms_and_other_der_are_not_pki_messages(scep_pki: ScepPki, device: Device) -> None:
    an_envelope = envelope(device.csr("s"), [scep_pki.ra_certificate])
    for message in (an_envelope, scep_pki.ca.public_bytes(Encoding.DER), device.csr("s")):
        assert refused(scep_pki, message).fail_info is FailInfo.BAD_REQUEST


@pytest.mark.parametrize("missing", ["transactionID", "senderNonce"])
def test_without_transaction_or_nonce_there_is_nobody_to_answer(
    scep_pki: ScepPki, device: Device, missing: str
) -> None:
    error = refused(scep_pki, good(scep_pki, device, omit=[missing]))
    assert (error.fail_info, error.reply) == (FailInfo.BAD_REQUEST, None)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("transactionID", char.PrintableString("x" * 129)),
        ("transactionID", char.UTF8String("tid\nforged log line")),
        ("transactionID", univ.OctetString(b"not a string")),
        ("senderNonce", univ.OctetString(b"short")),
        ("senderNonce", char.PrintableString("0123456789abcdef")),
    ],
)
def test_malformed_transaction_or_nonce(scep_pki: ScepPki, device: Device, name: str, value: object) -> None:
    error = refused(scep_pki, good(scep_pki, device, attributes={name: value}))
    assert (error.fail_info, error.reply) == (FailInfo.BAD_REQUEST, None)


def test_a_message_without_its_signers_certificate_is_refused(scep_pki: ScepPki, device: Device) -> None:
    stranger = self_signed(rsa.generate_private_key(65537, 2048), "stranger")
    message = good(scep_pki, device)
    # swap the carried certificate for another one: the SignerInfo names a certificate that is not there
    swapped = message.replace(
        device.certificate.public_bytes(Encoding.DER),  # type: ignore[union-attr]
        stranger.public_bytes(Encoding.DER),
    )
    error = refused(scep_pki, swapped)
    assert (error.fail_info, error.reply) == (FailInfo.BAD_REQUEST, None)


def test_two_signers_are_refused(scep_pki: ScepPki, device: Device) -> None:
    outer, _ = decoder.decode(good(scep_pki, device), asn1Spec=rfc5652.ContentInfo())
    signed, _ = decoder.decode(bytes(outer["content"]), asn1Spec=rfc5652.SignedData())
    signed["signerInfos"].append(signed["signerInfos"][0])
    outer["content"] = univ.Any(enc(signed))
    assert refused(scep_pki, enc(outer)).fail_info is FailInfo.BAD_REQUEST


# --- answered with a CertRep FAILURE ------------------------------------------------------------------------------


def test_an_envelope_for_another_ra_is_bad_cert_id(scep_pki: ScepPki, other_pki: ScepPki, device: Device) -> None:
    error = refused(scep_pki, device.message(19, device.csr("s"), [other_pki.ra_certificate]))
    assert error.fail_info is FailInfo.BAD_CERT_ID
    assert error.reply is not None and error.reply.transaction_id == device.transaction_id


def test_an_envelope_naming_our_ra_but_locked_with_another_key_does_not_open(scep_pki: ScepPki, device: Device) -> None:
    """The RSA unwrap fails; a random key takes its place (implicit rejection), so the content does not decrypt:
    badMessageCheck, or (once in 256 runs, when random padding happens to look right) an unreadable CSR."""
    impostor_key = rsa.generate_private_key(65537, 2048)
    impostor = (
        x509.CertificateBuilder()
        .subject_name(scep_pki.ra_certificate.subject)
        .issuer_name(scep_pki.ra_certificate.issuer)
        .serial_number(scep_pki.ra_certificate.serial_number)
        .public_key(impostor_key.public_key())
        .not_valid_before(now())
        .not_valid_after(now() + dt.timedelta(days=1))
        .sign(impostor_key, hashes.SHA256())
    )
    error = refused(scep_pki, device.message(19, device.csr("s"), [impostor]))
    assert error.fail_info in (FailInfo.BAD_MESSAGE_CHECK, FailInfo.BAD_REQUEST)
    assert error.reply is not None


@pytest.mark.parametrize("message_type", ["99", "3", "", "abc", "+19", "019 ", "1_9"])
def test_an_unknown_message_type_is_bad_request(scep_pki: ScepPki, device: Device, message_type: str) -> None:
    error = refused(scep_pki, device.message(message_type, device.csr("s"), [scep_pki.ra_certificate]))
    assert error.fail_info is FailInfo.BAD_REQUEST
    assert error.reply is not None


def test_a_missing_message_type_is_bad_request(scep_pki: ScepPki, device: Device) -> None:
    error = refused(scep_pki, good(scep_pki, device, omit=["messageType"]))
    assert error.fail_info is FailInfo.BAD_REQUEST and error.reply is not None


def test_a_wrong_message_digest_is_bad_message_check(scep_pki: ScepPki, device: Device) -> None:
    error = refused(scep_pki, good(scep_pki, device, message_digest=b"\x00" * 32))
    assert error.fail_info is FailInfo.BAD_MESSAGE_CHECK and error.reply is not None


def test_a_missing_message_digest_or_content_type_is_bad_message_check(scep_pki: ScepPki, device: Device) -> None:
    for missing in ("messageDigest", "contentType"):
        assert refused(scep_pki, good(scep_pki, device, omit=[missing])).fail_info is FailInfo.BAD_MESSAGE_CHECK
    wrong_type = good(scep_pki, device, attributes={"contentType": rfc5652.id_envelopedData})
    assert refused(scep_pki, wrong_type).fail_info is FailInfo.BAD_MESSAGE_CHECK


def test_a_bad_signature_is_bad_message_check(scep_pki: ScepPki, device: Device) -> None:
    error = refused(scep_pki, good(scep_pki, device, tamper_signature=True))
    assert error.fail_info is FailInfo.BAD_MESSAGE_CHECK and error.reply is not None


def test_a_signature_by_another_key_is_bad_message_check(scep_pki: ScepPki, device: Device) -> None:
    error = refused(scep_pki, good(scep_pki, device, signer_key=rsa.generate_private_key(65537, 2048)))
    assert error.fail_info is FailInfo.BAD_MESSAGE_CHECK


def test_a_changed_signed_attribute_breaks_the_signature(scep_pki: ScepPki, device: Device) -> None:
    message = bytearray(good(scep_pki, device))
    at = message.index(device.transaction_id.encode())
    message[at] ^= 0x01  # still a PrintableString, no longer what was signed
    assert refused(scep_pki, bytes(message)).fail_info is FailInfo.BAD_MESSAGE_CHECK


def test_md5_is_bad_alg(scep_pki: ScepPki, device: Device) -> None:
    error = refused(scep_pki, good(scep_pki, device, digest="md5"))
    assert error.fail_info is FailInfo.BAD_ALG
    assert error.reply is not None  # answered with SHA-256, the digest we do speak


@pytest.mark.parametrize(
    ("oid", "fail_info"),
    [
        ("1.2.840.10045.4.3.2", FailInfo.BAD_MESSAGE_CHECK),  # ecdsa-with-SHA256 for an RSA key
        ("1.2.840.113549.1.1.4", FailInfo.BAD_ALG),  # md5WithRSAEncryption
        ("1.2.3.4", FailInfo.BAD_ALG),
    ],
)
def test_a_signature_algorithm_we_do_not_know_or_that_does_not_fit(
    scep_pki: ScepPki, device: Device, oid: str, fail_info: FailInfo
) -> None:
    assert refused(scep_pki, good(scep_pki, device, signature_algorithm=oid)).fail_info is fail_info


def test_sha256_with_rsa_as_the_signature_algorithm_is_fine(scep_pki: ScepPki, device: Device) -> None:
    message = good(scep_pki, device, signature_algorithm="1.2.840.113549.1.1.11")
    assert load_pki_message(message, scep_pki.ra, now=now()).transaction_id == device.transaction_id


def test_an_unknown_content_cipher_is_bad_alg(scep_pki: ScepPki, device: Device) -> None:
    sealed = envelope(device.csr("s"), [scep_pki.ra_certificate], "aes128")
    ecb = sealed.replace(AES128_OID, AES128_OID[:-1] + b"\x01")  # aes128-ECB
    assert ecb != sealed
    error = refused(scep_pki, good(scep_pki, device, envelope_bytes=ecb))
    assert error.fail_info is FailInfo.BAD_ALG and error.reply is not None


def test_an_ec_requester_is_bad_alg(scep_pki: ScepPki) -> None:
    """The answer is enveloped to the requester's key with RSA key transport: an EC requester cannot read it."""
    key = ec.generate_private_key(ec.SECP256R1())
    device = Device(cn="ec-device", certificate=self_signed(key, "ec-device"))
    message = device.message(
        19, device.csr("s"), [scep_pki.ra_certificate], signer_key=key, signature_algorithm="1.2.840.10045.4.3.2"
    )
    error = refused(scep_pki, message)
    assert error.fail_info is FailInfo.BAD_ALG and error.reply is not None


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage", b"\x30\x03\x02\x01\x00"],
    ids=["empty", "text", "a-sequence"],
)
def test_an_envelope_with_garbage_inside_is_bad_request(scep_pki: ScepPki, device: Device, content: bytes) -> None:
    message = device.message(19, content, [scep_pki.ra_certificate])
    error = refused(scep_pki, message)
    assert error.fail_info is FailInfo.BAD_REQUEST and error.reply is not None


def test_no_envelope_at_all_is_bad_request(scep_pki: ScepPki, device: Device) -> None:
    error = refused(scep_pki, device.message(19, None, [scep_pki.ra_certificate]))
    assert error.fail_info is FailInfo.BAD_REQUEST and error.reply is not None
    garbage = refused(scep_pki, good(scep_pki, device, envelope_bytes=os.urandom(200)))
    assert garbage.fail_info is FailInfo.BAD_REQUEST and garbage.reply is not None


def test_content_of_the_wrong_kind_for_the_type_is_bad_request(scep_pki: ScepPki, device: Device) -> None:
    for number in (20, 21, 22):  # a CSR where an IssuerAndSubject or IssuerAndSerialNumber belongs
        assert refused(scep_pki, device.message(number, device.csr("s"), [scep_pki.ra_certificate])).fail_info is (
            FailInfo.BAD_REQUEST
        )


def test_a_negative_serial_is_bad_request(scep_pki: ScepPki, device: Device) -> None:
    query = rfc5652.IssuerAndSerialNumber()
    query["issuer"] = decoder.decode(scep_pki.ca.subject.public_bytes(), asn1Spec=rfc5280.Name())[0]
    query["serialNumber"] = -5
    error = refused(scep_pki, device.message(21, enc(query), [scep_pki.ra_certificate]))
    assert error.fail_info is FailInfo.BAD_REQUEST


def test_a_csr_with_a_bad_signature_is_bad_message_check(scep_pki: ScepPki, device: Device) -> None:
    csr = bytearray(device.csr("s"))
    csr[-5] ^= 0xFF
    assert refused(scep_pki, device.message(19, bytes(csr), [scep_pki.ra_certificate])).fail_info is (
        FailInfo.BAD_MESSAGE_CHECK
    )


def test_an_overlong_challenge_is_bad_request(scep_pki: ScepPki, device: Device) -> None:
    error = refused(scep_pki, device.message(19, device.csr("x" * 256), [scep_pki.ra_certificate]))
    assert error.fail_info is FailInfo.BAD_REQUEST
    assert "x" * 20 not in error.detail  # a challenge never comes back in a detail


def test_a_signer_certificate_with_serial_zero_is_not_read(scep_pki: ScepPki) -> None:
    """cryptography warns on such a certificate and will refuse it: it is refused here already (RFC 5280)."""
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "zero")])
    one = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now())
        .not_valid_after(now() + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )
    version_then_serial = b"\xa0\x03\x02\x01\x02\x02\x01\x01"
    assert version_then_serial in one
    zero = one.replace(version_then_serial, version_then_serial[:-1] + b"\x00", 1)
    device = Device(cn="zero", key=key, certificate=x509.load_der_x509_certificate(one))
    message = device.message(19, device.csr("s"), [scep_pki.ra_certificate]).replace(one, zero)
    error = refused(scep_pki, message)
    assert (error.fail_info, error.reply) == (FailInfo.BAD_REQUEST, None)
