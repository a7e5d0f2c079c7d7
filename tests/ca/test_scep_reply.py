"""CertRep, GetCACaps and GetCACert as clients read them: the test device (its own pyasn1 code), cryptography's
PKCS#7 functions and the openssl command line, each reading what the server builds."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from service.ca.crl import RevokedEntry, build_crl
from service.ca.keys import signature_hash
from service.ca.scep_caps import (
    CA_CERT_MEDIA_TYPE,
    CA_RA_CERT_MEDIA_TYPE,
    build_ca_caps,
    build_ca_cert_response,
    build_degenerate_pkcs7,
)
from service.ca.scep_message import PkiRequest, load_pki_message
from service.ca.scep_reply import build_cert_rep_failure, build_cert_rep_pending, build_cert_rep_success
from service.ca.scep_types import Cipher, Digest, FailInfo
from tests.ca.conftest import ScepPki
from tests.ca.scep_device import DIGESTS, Device, open_cert_rep, read_cert_rep
from tests.ca.test_scep_message import issue_for
from tests.helpers import now


def pkcs_req(pki: ScepPki, device: Device, **options: object) -> PkiRequest:
    return load_pki_message(
        device.message(19, device.csr("s"), [pki.ra_certificate], **options),  # type: ignore[arg-type]
        pki.ra,
        now=now(),
    )


@pytest.mark.parametrize(
    ("cipher", "digest"),
    [("des", "sha1"), ("des3", "sha256"), ("aes128", "sha256"), ("aes256", "sha512"), ("aes192", "sha384")],
)
def test_success_is_enveloped_to_the_requester_with_the_requests_own_algorithms(
    scep_pki: ScepPki, device: Device, cipher: str, digest: str
) -> None:
    request = pkcs_req(scep_pki, device, cipher=cipher, digest=digest, nonce=b"n" * 16)
    issued = issue_for(scep_pki, device)
    answer = build_cert_rep_success(request.reply, scep_pki.ra, now=now(), certificate=issued)
    rep = read_cert_rep(answer, scep_pki.ra_certificate)  # the signature verifies with the RA certificate
    assert (rep.status, rep.fail_info) == ("0", None)
    assert rep.transaction_id == device.transaction_id
    assert rep.recipient_nonce == b"n" * 16
    assert len(rep.sender_nonce) == 16 and rep.sender_nonce != rep.recipient_nonce
    assert rep.digest_oid == DIGESTS[digest][0]
    assert rep.signature_oid == "1.2.840.113549.1.1.1"  # rsaEncryption: strongSwan 5.9.8 accepts nothing else
    assert rep.envelope is not None
    used, inner = open_cert_rep(rep.envelope, device.certificate, device.key)  # type: ignore[arg-type]
    assert used == cipher
    assert pkcs7.load_der_pkcs7_certificates(inner) == [issued]


def test_every_certrep_gets_a_fresh_nonce_and_a_signing_time(scep_pki: ScepPki, device: Device) -> None:
    request = pkcs_req(scep_pki, device)
    first = read_cert_rep(build_cert_rep_pending(request.reply, scep_pki.ra, now=now()), scep_pki.ra_certificate)
    second = read_cert_rep(build_cert_rep_pending(request.reply, scep_pki.ra, now=now()), scep_pki.ra_certificate)
    assert first.sender_nonce != second.sender_nonce
    assert first.signing_time is not None and abs(first.signing_time - now()) < dt.timedelta(seconds=5)


def test_aes_answers_open_with_cryptography_too(scep_pki: ScepPki, device: Device) -> None:
    request = pkcs_req(scep_pki, device, cipher="aes256")
    issued = issue_for(scep_pki, device)
    rep = read_cert_rep(
        build_cert_rep_success(request.reply, scep_pki.ra, now=now(), certificate=issued), scep_pki.ra_certificate
    )
    assert rep.envelope is not None
    inner = pkcs7.pkcs7_decrypt_der(rep.envelope, device.certificate, device.key, [])  # type: ignore[arg-type]
    assert pkcs7.load_der_pkcs7_certificates(inner) == [issued]


def test_a_degenerate_pkcs7_is_der_whatever_the_order_given(scep_pki: ScepPki, device: Device) -> None:
    issued = issue_for(scep_pki, device)
    one = build_degenerate_pkcs7([issued, scep_pki.ca])
    assert one == build_degenerate_pkcs7([scep_pki.ca, issued])
    assert set(pkcs7.load_der_pkcs7_certificates(one)) == {issued, scep_pki.ca}  # no BER warning: DER


def test_getcrl_is_answered_with_the_crl(scep_pki: ScepPki, device: Device, tmp_path: Path) -> None:
    class Signer:
        def sign_crl(self, builder: x509.CertificateRevocationListBuilder) -> x509.CertificateRevocationList:
            return builder.sign(scep_pki.ca_key, signature_hash(scep_pki.ca_key))  # type: ignore[arg-type]

    crl = build_crl(
        Signer(),
        scep_pki.ca,
        [RevokedEntry(0x1234, now())],
        number=7,  # type: ignore[arg-type]
        this_update=now(),
        next_update=now() + dt.timedelta(days=1),
    )
    request = pkcs_req(scep_pki, device)
    rep = read_cert_rep(build_cert_rep_success(request.reply, scep_pki.ra, now=now(), crl=crl), scep_pki.ra_certificate)
    assert rep.envelope is not None
    _, inner = open_cert_rep(rep.envelope, device.certificate, device.key)  # type: ignore[arg-type]
    (tmp_path / "crl.p7").write_bytes(inner)
    shown = subprocess.run(
        ["openssl", "pkcs7", "-inform", "DER", "-in", str(tmp_path / "crl.p7"), "-print_certs", "-text", "-noout"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Certificate Revocation List" in shown and "Serial Number: 1234" in shown


def test_failure_says_why_and_carries_no_envelope(scep_pki: ScepPki, device: Device) -> None:
    request = pkcs_req(scep_pki, device, digest="sha1")
    answer = build_cert_rep_failure(request.reply, scep_pki.ra, FailInfo.BAD_REQUEST, now=now(), text="wrong challenge")
    rep = read_cert_rep(answer, scep_pki.ra_certificate)
    assert (rep.status, rep.fail_info, rep.fail_info_text) == ("2", "2", "wrong challenge")
    assert rep.digest_oid == DIGESTS["sha1"][0]  # what the requester verifies: its own digest
    assert rep.envelope == b""  # empty content, present: OpenSSL's PKCS7_verify (certmonger) needs one


@pytest.mark.parametrize("fail_info", list(FailInfo))
def test_each_fail_info_is_its_number(scep_pki: ScepPki, device: Device, fail_info: FailInfo) -> None:
    request = pkcs_req(scep_pki, device)
    rep = read_cert_rep(
        build_cert_rep_failure(request.reply, scep_pki.ra, fail_info, now=now()), scep_pki.ra_certificate
    )
    assert (rep.status, rep.fail_info, rep.fail_info_text) == ("2", str(int(fail_info)), None)


def test_pending_is_status_3(scep_pki: ScepPki, device: Device) -> None:
    request = pkcs_req(scep_pki, device)
    rep = read_cert_rep(build_cert_rep_pending(request.reply, scep_pki.ra, now=now()), scep_pki.ra_certificate)
    assert (rep.status, rep.fail_info, rep.envelope) == ("3", None, b"")


def test_openssl_verifies_a_certrep_with_the_ra_certificate(scep_pki: ScepPki, device: Device, tmp_path: Path) -> None:
    request = pkcs_req(scep_pki, device)
    (tmp_path / "rep.der").write_bytes(build_cert_rep_pending(request.reply, scep_pki.ra, now=now()))
    (tmp_path / "ca.pem").write_bytes(scep_pki.ca.public_bytes(Encoding.PEM))
    verify = [
        "openssl",
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        str(tmp_path / "rep.der"),
        "-CAfile",
        str(tmp_path / "ca.pem"),
        "-purpose",
        "any",
        "-out",
        str(tmp_path / "content"),
    ]
    result = subprocess.run(verify, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr
    # and a CertRep signed by another RA does not verify against this CA
    (tmp_path / "ca.pem").write_bytes(device.certificate.public_bytes(Encoding.PEM))  # type: ignore[union-attr]
    assert subprocess.run(verify, capture_output=True, text=True).returncode != 0


def test_success_needs_something_to_carry(scep_pki: ScepPki, device: Device) -> None:
    request = pkcs_req(scep_pki, device)
    with pytest.raises(ValueError, match="certificate or a CRL"):
        build_cert_rep_success(request.reply, scep_pki.ra, now=now())
    with pytest.raises(ValueError, match="certificate or a CRL"):
        build_cert_rep_success(request.reply, scep_pki.ra, now=now(), certificate=scep_pki.ca, crl=object())  # type: ignore[arg-type]


def test_get_ca_caps_lists_what_the_server_does_and_what_strongswan_5_9_8_needs() -> None:
    caps = build_ca_caps().decode().split("\n")
    assert caps[-1] == ""  # one keyword a line, each ending with a line feed
    assert set(caps[:-1]) == {
        "AES",
        "DES3",
        "POSTPKIOperation",
        "Renewal",
        "SCEPStandard",
        "SHA-1",
        "SHA-224",
        "SHA-256",
        "SHA-384",
        "SHA-512",
    }
    assert {d.capability for d in Digest} <= set(caps)
    assert {c.capability for c in Cipher if c is not Cipher.DES} <= set(caps)  # single DES has no keyword


def test_get_ca_cert_with_an_ra_is_a_degenerate_pkcs7_of_ca_and_ra(scep_pki: ScepPki, tmp_path: Path) -> None:
    answer = build_ca_cert_response([scep_pki.ca], scep_pki.ra_certificate)
    assert answer.media_type == CA_RA_CERT_MEDIA_TYPE
    assert set(pkcs7.load_der_pkcs7_certificates(answer.body)) == {scep_pki.ca, scep_pki.ra_certificate}
    (tmp_path / "ca-ra.p7").write_bytes(answer.body)
    shown = subprocess.run(
        ["openssl", "pkcs7", "-inform", "DER", "-in", str(tmp_path / "ca-ra.p7"), "-print_certs", "-noout"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown.count("subject=") == 2


def test_get_ca_cert_without_an_ra_is_the_ca_in_der(scep_pki: ScepPki) -> None:
    answer = build_ca_cert_response([scep_pki.ca], None)
    assert answer.media_type == CA_CERT_MEDIA_TYPE
    assert x509.load_der_x509_certificate(answer.body) == scep_pki.ca
    with pytest.raises(ValueError, match="CA certificate"):
        build_ca_cert_response([], None)


def test_the_ra_certificate_is_rsa_for_encryption_and_signature_and_not_a_ca(scep_pki: ScepPki) -> None:
    ra = scep_pki.ra_certificate
    usage = ra.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    assert ra.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ra.verify_directly_issued_by(scep_pki.ca)
    assert ra.not_valid_after_utc <= scep_pki.ca.not_valid_after_utc
    assert ra.fingerprint(hashes.SHA256()) != scep_pki.ca.fingerprint(hashes.SHA256())


def test_an_ra_key_that_is_not_rsa_or_too_small_is_refused(scep_pki: ScepPki) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from service.ca.scep_ra import build_ra_builder

    for key in (ec.generate_private_key(ec.SECP256R1()), rsa.generate_private_key(65537, 1024)):
        with pytest.raises(ValueError, match="RSA of at least 2048"):
            build_ra_builder(key.public_key(), "RA", scep_pki.ca, now=now(), lifetime=dt.timedelta(days=1))  # type: ignore[arg-type]
