"""Reading request pkiMessages: every message type, every cipher and digest, what the CSR carries, the clock,
and the renewal signer check. The requests come from tests/ca/scep_device.py, a client written apart from the
server's own builders."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AttributeOID, NameOID
from pyasn1.codec.ber import decoder
from pyasn1.codec.ber import encoder as ber_encoder
from pyasn1.type import char, univ
from pyasn1_modules import rfc2986, rfc5280, rfc5652

from service.ca.issue import build_leaf_builder, random_serial_number
from service.ca.keys import signature_hash
from service.ca.names import build_subject, parse_general_name
from service.ca.policy import LeafSpec
from service.ca.profiles import BUILTIN_PROFILES
from service.ca.scep_content import CertificationRequest, IssuerAndSerial, IssuerAndSubject
from service.ca.scep_message import check_renewal_signer, load_pki_message
from service.ca.scep_types import Cipher, Digest, FailInfo, MessageType, ScepError
from tests.ca.conftest import ScepPki
from tests.ca.scep_device import Device, enc, envelope
from tests.helpers import now

CIPHERS = {
    "des": Cipher.DES,
    "des3": Cipher.DES3,
    "aes128": Cipher.AES128,
    "aes192": Cipher.AES192,
    "aes256": Cipher.AES256,
}
DIGESTS = {"sha1": Digest.SHA1, "sha256": Digest.SHA256, "sha384": Digest.SHA384, "sha512": Digest.SHA512}


def issue_for(pki: ScepPki, device: Device, *, not_after: dt.timedelta = dt.timedelta(days=30)) -> x509.Certificate:
    """A certificate of the CA for the device's key: what it renews with."""
    spec = LeafSpec(
        build_subject(device.cn), device.cn, (parse_general_name(device.cn),), BUILTIN_PROFILES["client"], 30
    )
    builder = build_leaf_builder(
        spec,
        device.key.public_key(),
        pki.ca,
        serial_number=random_serial_number(),
        now=now(),
        public_url="https://ca.test",
    )
    if not_after < dt.timedelta(0):
        builder = builder.not_valid_before(now() - dt.timedelta(days=2)).not_valid_after(now() + not_after)
    return builder.sign(pki.ca_key, signature_hash(pki.ca_key))  # type: ignore[arg-type]


@pytest.mark.parametrize("cipher", list(CIPHERS))
@pytest.mark.parametrize("digest", list(DIGESTS))
def test_a_pkcsreq_is_verified_and_opened_with_every_cipher_and_digest(
    scep_pki: ScepPki, device: Device, cipher: str, digest: str
) -> None:
    message = device.message(19, device.csr("one-time-secret"), [scep_pki.ra_certificate], cipher=cipher, digest=digest)
    request = load_pki_message(message, scep_pki.ra, now=now())
    assert request.message_type is MessageType.PKCS_REQ
    assert request.transaction_id == device.transaction_id
    assert request.signer == device.certificate
    assert isinstance(request.content, CertificationRequest)
    assert request.content.challenge_password == "one-time-secret"
    assert request.content.csr.public_key() == device.key.public_key()
    assert request.content.read().common_name == device.cn
    # the answer uses what the request used: never weaker
    assert request.reply.cipher is CIPHERS[cipher]
    assert request.reply.digest is DIGESTS[digest]
    assert request.reply.signer == device.certificate
    assert len(request.reply.sender_nonce) == 16


def test_the_envelope_may_be_addressed_to_several_certificates(scep_rsa_pki: ScepPki, device: Device) -> None:
    """micromdm's scepclient encrypts to every certificate GetCACert returned: the CA's too, when it is RSA."""
    message = device.message(19, device.csr("s"), [scep_rsa_pki.ca, scep_rsa_pki.ra_certificate], cipher="des")
    request = load_pki_message(message, scep_rsa_pki.ra, now=now())
    assert isinstance(request.content, CertificationRequest)
    assert request.reply.cipher is Cipher.DES


def test_a_pkcsreq_without_a_challenge_says_so(scep_pki: ScepPki, device: Device) -> None:
    request = load_pki_message(device.message(19, device.csr(), [scep_pki.ra_certificate]), scep_pki.ra, now=now())
    assert isinstance(request.content, CertificationRequest)
    assert request.content.challenge_password is None


def test_the_challenge_never_shows_in_a_repr(scep_pki: ScepPki, device: Device) -> None:
    request = load_pki_message(
        device.message(19, device.csr("hunter2-secret"), [scep_pki.ra_certificate]), scep_pki.ra, now=now()
    )
    assert "hunter2-secret" not in repr(request)
    assert "hunter2-secret" not in repr(request.content)


def test_a_csr_announcing_aes_256_is_answered_with_it(scep_pki: ScepPki, device: Device) -> None:
    """SMIMECapabilities in the CSR (as Windows puts it): the CertRep may be stronger than the request's DES."""
    capabilities = univ.SequenceOf(componentType=univ.Sequence())
    for oid in ("2.16.840.1.101.3.4.1.42", "1.2.840.113549.3.2"):  # AES-256-CBC, and RC2, which we ignore
        capability = univ.Sequence()
        capability.setComponentByPosition(0, univ.ObjectIdentifier(oid))
        capabilities.append(capability)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device.cn)]))
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.840.113549.1.9.15"), enc(capabilities)),
            critical=False,
        )
        .add_attribute(AttributeOID.CHALLENGE_PASSWORD, b"s")
        .sign(device.key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )
    request = load_pki_message(device.message(19, csr, [scep_pki.ra_certificate], cipher="des"), scep_pki.ra, now=now())
    assert isinstance(request.content, CertificationRequest)
    assert request.content.announced_ciphers == (Cipher.AES256,)
    assert request.reply.cipher is Cipher.AES256


def test_a_csr_whose_attributes_are_not_in_der_order_is_read(scep_pki: ScepPki, device: Device) -> None:
    """strongSwan 5.9.8 writes extensionRequest before challengePassword: a SET OF out of DER order (shorter
    encodings first), which cryptography refuses to load. Its signature is checked on the bytes as sent."""
    csr = x509.load_der_x509_csr(device.csr("s3cret"))
    parsed, _ = decoder.decode(csr.public_bytes(Encoding.DER), asn1Spec=rfc2986.CertificationRequest())
    info = parsed["certificationRequestInfo"]
    attributes = list(info["attributes"])
    extension_request = rfc5280.Attribute()
    extension_request["type"] = univ.ObjectIdentifier("1.2.840.113549.1.9.14")
    san = x509.SubjectAlternativeName([x509.DNSName("sw.example")])
    extensions = univ.SequenceOf(componentType=univ.Sequence())
    extension = univ.Sequence()
    extension.setComponentByPosition(0, univ.ObjectIdentifier("2.5.29.17"))
    extension.setComponentByPosition(1, univ.OctetString(san.public_bytes()))
    extensions.append(extension)
    extension_request["values"].append(univ.Any(enc(extensions)))
    info["attributes"].clear()
    for item in [extension_request, *attributes]:  # the longer attribute first, as strongSwan writes them
        info["attributes"].append(item)
    info_der = bytes(ber_encoder.encode(info))  # BER keeps the order; DER would sort it
    signature = device.key.sign(info_der, padding.PKCS1v15(), hashes.SHA256())
    parsed["signature"] = univ.BitString.fromOctetString(signature)
    unsorted = bytes(ber_encoder.encode(parsed))
    with pytest.raises(ValueError, match="InvalidSetOrdering"):
        x509.load_der_x509_csr(unsorted)
    request = load_pki_message(device.message(19, unsorted, [scep_pki.ra_certificate]), scep_pki.ra, now=now())
    assert isinstance(request.content, CertificationRequest)
    assert request.content.der == unsorted
    assert request.content.challenge_password == "s3cret"
    assert [f"{name.value}" for name in request.content.read().sans] == ["sw.example"]

    tampered = bytearray(unsorted)
    tampered[unsorted.index(b"s3cret")] ^= 1  # the challenge changed after signing
    with pytest.raises(ScepError) as caught:
        load_pki_message(device.message(19, bytes(tampered), [scep_pki.ra_certificate]), scep_pki.ra, now=now())
    assert caught.value.fail_info is FailInfo.BAD_MESSAGE_CHECK


def test_certpoll_carries_issuer_and_subject(scep_pki: ScepPki, device: Device) -> None:
    issuer_and_subject = univ.Sequence()
    issuer_and_subject.setComponentByPosition(
        0, decoder.decode(scep_pki.ra_certificate.subject.public_bytes(), asn1Spec=rfc5280.Name())[0]
    )
    issuer_and_subject.setComponentByPosition(
        1,
        decoder.decode(
            device.certificate.subject.public_bytes(),  # type: ignore[union-attr]
            asn1Spec=rfc5280.Name(),
        )[0],
    )
    request = load_pki_message(
        device.message(20, enc(issuer_and_subject), [scep_pki.ra_certificate]), scep_pki.ra, now=now()
    )
    assert request.message_type is MessageType.CERT_POLL
    # strongSwan names the RA (the certificate it checks responses with) as the issuer, not the CA
    assert request.content == IssuerAndSubject(scep_pki.ra_certificate.subject, device.certificate.subject)  # type: ignore[union-attr]


@pytest.mark.parametrize(("number", "expected"), [(21, MessageType.GET_CERT), (22, MessageType.GET_CRL)])
def test_getcert_and_getcrl_carry_issuer_and_serial(
    scep_pki: ScepPki, device: Device, number: int, expected: MessageType
) -> None:
    query = rfc5652.IssuerAndSerialNumber()
    query["issuer"] = decoder.decode(scep_pki.ca.subject.public_bytes(), asn1Spec=rfc5280.Name())[0]
    query["serialNumber"] = 0x1234
    request = load_pki_message(device.message(number, enc(query), [scep_pki.ra_certificate]), scep_pki.ra, now=now())
    assert request.message_type is expected
    assert request.content == IssuerAndSerial(scep_pki.ca.subject, 0x1234)


def test_a_renewalreq_signed_by_our_certificate_passes_the_signer_check(scep_pki: ScepPki) -> None:
    device = Device(cn="renewing")
    current = issue_for(scep_pki, device)
    new_key = rsa.generate_private_key(65537, 2048)
    message = device.message(17, device.csr(key=new_key), [scep_pki.ra_certificate], signer=current)
    request = load_pki_message(message, scep_pki.ra, now=now())
    assert request.message_type is MessageType.RENEWAL_REQ
    assert request.signer == current
    assert request.reply.signer == current  # the new certificate is enveloped to the key being replaced
    assert check_renewal_signer(request.signer, [scep_pki.ca], now=now()) == scep_pki.ca


def test_the_renewal_signer_check_refuses_others(scep_pki: ScepPki, other_pki: ScepPki, device: Device) -> None:
    with pytest.raises(ScepError) as caught:
        check_renewal_signer(device.certificate, [scep_pki.ca], now=now())  # type: ignore[arg-type]
    assert caught.value.fail_info is FailInfo.BAD_CERT_ID
    foreign = issue_for(other_pki, Device(cn="elsewhere"))
    with pytest.raises(ScepError) as caught:
        check_renewal_signer(foreign, [scep_pki.ca], now=now())
    assert caught.value.fail_info is FailInfo.BAD_CERT_ID
    ours = issue_for(scep_pki, Device(cn="ours"))
    with pytest.raises(ScepError) as caught:
        check_renewal_signer(ours, [scep_pki.ca], now=ours.not_valid_after_utc + dt.timedelta(seconds=1))
    assert caught.value.fail_info is FailInfo.BAD_TIME
    assert check_renewal_signer(ours, [other_pki.ca, scep_pki.ca], now=ours.not_valid_after_utc) == scep_pki.ca


@pytest.mark.parametrize(
    ("skew", "accepted"),
    [(dt.timedelta(hours=23), True), (dt.timedelta(hours=25), False), (-dt.timedelta(hours=25), False)],
)
def test_signing_time_must_be_near_our_clock(
    scep_pki: ScepPki, device: Device, skew: dt.timedelta, accepted: bool
) -> None:
    message = device.message(19, device.csr("s"), [scep_pki.ra_certificate], signing_time=now() + skew)
    if accepted:
        assert load_pki_message(message, scep_pki.ra, now=now()).message_type is MessageType.PKCS_REQ
        return
    with pytest.raises(ScepError) as caught:
        load_pki_message(message, scep_pki.ra, now=now())
    assert caught.value.fail_info is FailInfo.BAD_TIME
    assert caught.value.reply is not None and caught.value.reply.transaction_id == device.transaction_id


def test_signing_time_is_optional(scep_pki: ScepPki, device: Device) -> None:
    message = device.message(19, device.csr("s"), [scep_pki.ra_certificate], omit=["signingTime"])
    assert load_pki_message(message, scep_pki.ra, now=now()).signing_time is None


def resigned(device: Device, info: univ.Sequence, parsed: univ.Sequence) -> bytes:
    """`parsed` (a CertificationRequest) with `info` signed again by the device's key, in DER."""
    from pyasn1.codec.der import encoder as der_encoder

    parsed["certificationRequestInfo"] = info
    signature = device.key.sign(bytes(der_encoder.encode(info)), padding.PKCS1v15(), hashes.SHA256())
    parsed["signature"] = univ.BitString.fromOctetString(signature)
    return bytes(der_encoder.encode(parsed))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (char.BMPString("s3cret"), "s3cret"),  # UTF-16: cryptography's bytes hold NULs, pyasn1 reads the text
        (char.UTF8String("pässwörd"), "pässwörd"),
        (char.PrintableString("plain"), "plain"),
    ],
)
def test_a_challenge_in_any_string_type_is_read(
    scep_pki: ScepPki, device: Device, value: object, expected: str
) -> None:
    parsed, _ = decoder.decode(device.csr("placeholder"), asn1Spec=rfc2986.CertificationRequest())
    info = parsed["certificationRequestInfo"]
    (challenge,) = list(info["attributes"])
    challenge["values"].clear()
    challenge["values"].append(univ.Any(enc(value)))
    csr = resigned(device, info, parsed)
    request = load_pki_message(device.message(19, csr, [scep_pki.ra_certificate]), scep_pki.ra, now=now())
    assert isinstance(request.content, CertificationRequest)
    assert request.content.challenge_password == expected


def test_a_challenge_with_two_values_is_refused(scep_pki: ScepPki, device: Device) -> None:
    parsed, _ = decoder.decode(device.csr("one"), asn1Spec=rfc2986.CertificationRequest())
    info = parsed["certificationRequestInfo"]
    (challenge,) = list(info["attributes"])
    challenge["values"].append(univ.Any(enc(char.PrintableString("two"))))
    csr = resigned(device, info, parsed)
    with pytest.raises(ScepError) as caught:
        load_pki_message(device.message(19, csr, [scep_pki.ra_certificate]), scep_pki.ra, now=now())
    assert caught.value.fail_info is FailInfo.BAD_REQUEST


def test_a_ber_message_with_indefinite_lengths_is_read(scep_pki: ScepPki, device: Device) -> None:
    """Streaming encoders (OpenSSL's -stream, Windows') write BER: indefinite lengths around DER certificates and
    attributes, the content as a chunked OCTET STRING. pyasn1 reads it, the signature checks over what was signed.
    (pyasn1 0.6 cannot read an indefinite length inside an ANY: such a certificate or attribute is refused.)"""
    from pyasn1.codec.ber import encoder as ber

    from service.ca.scep_asn1 import ENVELOPED_CONTENT, SIGNED_CONTENT

    inner, _ = decoder.decode(envelope(device.csr("s3cret"), [scep_pki.ra_certificate]), asn1Spec=ENVELOPED_CONTENT)
    ber_envelope = bytes(ber.encode(inner, defMode=False, maxChunkSize=64))
    message = device.message(19, None, [scep_pki.ra_certificate], envelope_bytes=ber_envelope)
    outer, _ = decoder.decode(message, asn1Spec=SIGNED_CONTENT)
    ber_message = bytes(ber.encode(outer, defMode=False, maxChunkSize=256))
    assert ber_message.startswith(b"\x30\x80") and b"\x24\x80" in ber_message  # indefinite, chunked content
    request = load_pki_message(ber_message, scep_pki.ra, now=now())
    assert isinstance(request.content, CertificationRequest)
    assert request.content.challenge_password == "s3cret"


@pytest.mark.parametrize(
    ("transport", "by_key_id"), [("oaep", False), ("oaep-sha256", False), ("pkcs1", True), ("oaep-sha256", True)]
)
def test_oaep_key_transport_and_recipients_named_by_key_id(
    scep_pki: ScepPki, device: Device, transport: str, by_key_id: bool
) -> None:
    sealed = envelope(device.csr("s"), [scep_pki.ra_certificate], "aes256", transport=transport, by_key_id=by_key_id)
    message = device.message(19, None, [scep_pki.ra_certificate], envelope_bytes=sealed)
    request = load_pki_message(message, scep_pki.ra, now=now())
    assert isinstance(request.content, CertificationRequest)
    assert request.content.challenge_password == "s"
    assert request.reply.cipher is Cipher.AES256


def test_an_unknown_key_transport_is_bad_alg(scep_pki: ScepPki, device: Device) -> None:
    sealed = envelope(device.csr("s"), [scep_pki.ra_certificate], transport="1.2.840.113549.1.9.16.3.18")  # RSA-KEM
    with pytest.raises(ScepError) as caught:
        load_pki_message(
            device.message(19, None, [scep_pki.ra_certificate], envelope_bytes=sealed), scep_pki.ra, now=now()
        )
    assert caught.value.fail_info is FailInfo.BAD_ALG
    assert caught.value.reply is not None
