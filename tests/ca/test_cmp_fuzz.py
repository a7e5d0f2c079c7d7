"""Property tests (hypothesis) of the CMP parser: whatever arrives, the cmp modules answer with a CmpError (which
the front door turns into an `error` message) or a value, never another exception; and every CmpError can be
answered. Inputs: arbitrary bytes, good messages of every body type mutated (flipped, cut, spliced), and a good
header before an arbitrary body.
"""

from __future__ import annotations

import functools
import os

from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.ca.cmp_confirm import PendingConfirmation, check_confirmation
from service.ca.cmp_failures import CmpError
from service.ca.cmp_message import CmpMessage, load_pki_message
from service.ca.cmp_request import read_certification_request, read_general_message, read_revocation_request
from service.ca.cmp_response import SignedBy, build_response, refusal_body
from service.ca.cmp_verify import verify_mac_protection, verify_signature_protection
from service.ca.csr import build_csr
from service.ca.der import tlv
from service.ca.names import build_subject
from tests.ca.cmp_helpers import (
    PBMAC1,
    Mac,
    Signature,
    cert_conf,
    cert_req_messages,
    cmp_ca,
    device,
    general_message,
    ra,
    request,
    revocation_request,
)
from tests.helpers import now, p256

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))  # FUZZ_SCALE=10 for a deeper run by hand
FUZZ = settings(
    max_examples=int(300 * SCALE),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@functools.cache
def seeds() -> tuple[bytes, ...]:
    """One good message of each body type a client sends, MAC-protected and signed."""
    key, certificate = device()
    signed = Signature(key, certificate)
    csr = build_csr(p256(), "dev1.test", ["dev1.test"]).public_bytes(Encoding.DER)
    crmf = cert_req_messages(p256(), build_subject("dev1.test"), sans=("dev1.test", "10.0.0.1"))
    return (
        request("ir", crmf, Mac(b"secret"), implicit_confirm=True),
        request("cr", crmf, signed),
        request("kur", cert_req_messages(p256(), certificate.subject, old_certificate=certificate), signed),
        request("p10cr", csr, Mac(b"secret", algorithm=PBMAC1)),
        request("certConf", cert_conf(b"h" * 32), Mac(b"secret"), recip_nonce=b"n" * 16, transaction_id=b"t" * 16),
        request("rr", revocation_request(certificate.issuer, certificate.serial_number, 1), signed),
        request("genm", general_message("1.3.6.1.5.5.7.4.17", "1.3.6.1.5.5.7.4.19"), Mac(b"secret")),
    )


def answer(error: CmpError) -> None:
    """Every refusal can be answered (signed by the RA), whatever state the request was in."""
    key, certificate = ra()
    der = build_response(error.header, refusal_body(error), SignedBy(key, certificate), now=now()).der
    assert der.startswith(b"\x30")


def read_all(message: CmpMessage) -> None:
    """Everything a front door would do with a message that reads; only CmpError may come out."""
    steps = [
        lambda: verify_mac_protection(message, b"secret"),
        lambda: verify_signature_protection(message, [cmp_ca().certificate], now=now()),
    ]
    readers = {
        "ir": read_certification_request,
        "cr": read_certification_request,
        "kur": read_certification_request,
        "p10cr": read_certification_request,
        "rr": read_revocation_request,
        "genm": read_general_message,
    }
    if message.body_type in readers:
        steps.append(lambda: readers[message.body_type](message))
    if message.body_type == "certConf":
        pending = PendingConfirmation(b"t" * 16, b"n" * 16, 0, device()[1].public_bytes(Encoding.DER))
        steps.append(lambda: check_confirmation(message, pending))
    for step in steps:
        try:
            step()
        except CmpError as error:
            answer(error)


def parse(der: bytes) -> None:
    try:
        message = load_pki_message(der)
    except CmpError as error:
        answer(error)
        return
    read_all(message)


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_refused_with_a_cmp_error(der: bytes) -> None:
    parse(der)


@FUZZ
@given(st.data())
def test_mutated_good_messages_are_refused_or_read(data: st.DataObject) -> None:
    der = bytearray(data.draw(st.sampled_from(seeds())))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(der) - 1))
        action = data.draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        if action == "flip":
            der[position] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "set":
            der[position] = data.draw(st.sampled_from([0x00, 0x30, 0x80, 0x81, 0x84, 0xA0, 0xFF]))
        elif action == "cut":
            del der[position:]
        elif action == "insert":
            der[position:position] = data.draw(st.binary(min_size=1, max_size=8))
        elif len(der) > 1:
            del der[position]
        if not der:
            break
    parse(bytes(der))


def _element() -> st.SearchStrategy[bytes]:
    leaf = st.builds(
        tlv, st.sampled_from([0x02, 0x03, 0x04, 0x05, 0x06, 0x0C, 0x13, 0x17, 0x18, 0x80, 0x81]), st.binary(max_size=24)
    )
    return st.recursive(
        leaf,
        lambda children: st.builds(
            lambda tag, items: tlv(tag, *items),
            st.sampled_from([0x30, 0x31, 0xA0, 0xA1, 0xA3, 0xA4, 0xA5, 0xA6, 0xA9]),
            st.lists(children, max_size=5),
        ),
        max_leaves=30,
    )


@FUZZ
@given(st.sampled_from(["ir", "cr", "kur", "p10cr", "certConf", "rr", "genm"]), _element())
def test_a_good_header_before_any_body_is_refused_or_read(body_type: str, content: bytes) -> None:
    """Structured garbage past the protection: what a client holding a real secret could send."""
    parse(request(body_type, content, Mac(b"secret")))
