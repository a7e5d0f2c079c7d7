"""Property tests (hypothesis) of the pkiMessage parser: whatever the bytes, `load_pki_message` returns a request
or raises ScepError; a refusal with a reply context can always be answered with a CertRep FAILURE; an accepted
mutation is still a consistent request. FUZZ_SCALE=10 runs ten times as many examples."""

from __future__ import annotations

import functools
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder
from pyasn1.type import univ
from pyasn1_modules import rfc5280, rfc5652

from service.ca.scep_content import CertificationRequest, IssuerAndSerial, IssuerAndSubject
from service.ca.scep_message import PkiRequest, load_pki_message
from service.ca.scep_reply import build_cert_rep_failure
from service.ca.scep_types import MessageType, ScepError
from tests.ca.conftest import ScepPki, make_scep_pki
from tests.ca.scep_device import Device, enc, read_cert_rep
from tests.helpers import now

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
FUZZ = settings(
    max_examples=int(150 * SCALE),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@functools.cache
def corpus() -> tuple[ScepPki, tuple[bytes, ...]]:
    """One PKI and valid messages of every type, with the ciphers and digests the real clients use."""
    pki = make_scep_pki(cn="fuzz CA")
    device = Device(cn="fuzzed")
    ra = [pki.ra_certificate]
    query = rfc5652.IssuerAndSerialNumber()
    query["issuer"] = decoder.decode(pki.ca.subject.public_bytes(), asn1Spec=rfc5280.Name())[0]
    query["serialNumber"] = 12345
    issuer_and_subject = univ.Sequence()
    issuer_and_subject.setComponentByPosition(0, query["issuer"])
    issuer_and_subject.setComponentByPosition(1, query["issuer"])
    messages = (
        device.message(19, device.csr("challenge"), ra, cipher="des", digest="sha1"),  # micromdm scepclient
        device.message(19, device.csr("challenge"), ra, cipher="aes128", digest="sha256"),  # strongSwan
        device.message(19, device.csr(), ra, cipher="aes256", digest="sha256"),  # certmonger, no challenge
        device.message(20, enc(issuer_and_subject), ra, cipher="des3", digest="sha512"),
        device.message(21, enc(query), ra, cipher="aes192", digest="sha384"),
        device.message(22, enc(query), ra),
    )
    return pki, messages


def check(pki: ScepPki, message: bytes) -> PkiRequest | ScepError:
    try:
        request = load_pki_message(message, pki.ra, now=now())
    except ScepError as error:
        if error.reply is not None:
            answer = build_cert_rep_failure(error.reply, pki.ra, error.fail_info, now=now(), text=error.detail)
            assert read_cert_rep(answer, pki.ra_certificate).fail_info == str(int(error.fail_info))
        return error
    expected = {
        MessageType.PKCS_REQ: CertificationRequest,
        MessageType.RENEWAL_REQ: CertificationRequest,
        MessageType.CERT_POLL: IssuerAndSubject,
        MessageType.GET_CERT: IssuerAndSerial,
        MessageType.GET_CRL: IssuerAndSerial,
    }[request.message_type]
    assert isinstance(request.content, expected)
    assert request.reply.cipher is not None and request.reply.transaction_id == request.transaction_id
    return request


@FUZZ
@given(st.binary(max_size=4096))
def test_any_bytes_are_a_request_or_a_scep_error(data: bytes) -> None:
    pki, _ = corpus()
    assert isinstance(check(pki, data), ScepError)


@FUZZ
@given(
    st.integers(min_value=0, max_value=5),
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "set", "delete", "insert", "truncate"]),
            st.integers(0, 1 << 16),
            st.integers(0, 255),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_messages_are_a_request_or_a_scep_error(which: int, mutations: list[tuple[str, int, int]]) -> None:
    pki, messages = corpus()
    data = bytearray(messages[which])
    for operation, where, value in mutations:
        at = where % (len(data) or 1)
        if operation == "flip" and data:
            data[at] ^= value or 1
        elif operation == "set" and data:
            data[at] = value
        elif operation == "delete" and data:
            del data[at]
        elif operation == "insert":
            data.insert(at, value)
        elif operation == "truncate":
            del data[at:]
    check(pki, bytes(data))


@FUZZ
@given(st.integers(min_value=0, max_value=5), st.binary(min_size=1, max_size=64), st.integers(0, 1 << 16))
def test_spliced_messages_are_a_request_or_a_scep_error(which: int, chunk: bytes, where: int) -> None:
    """Bytes dropped into a message, replacing as many: lengths, tags and OIDs all get hit."""
    pki, messages = corpus()
    data = messages[which]
    at = where % len(data)
    check(pki, data[:at] + chunk + data[at + len(chunk) :])


def test_the_corpus_itself_is_accepted() -> None:
    pki, messages = corpus()
    types = [load_pki_message(message, pki.ra, now=now()).message_type for message in messages]
    assert types == [MessageType.PKCS_REQ] * 3 + [MessageType.CERT_POLL, MessageType.GET_CERT, MessageType.GET_CRL]
