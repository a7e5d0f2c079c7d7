"""The hand-written DER of CMP's hot path (cmp_der, cmp_crmf, the header and the ip body) held to pyasn1-modules'
reading and writing of the same structures: on openssl cmp's own messages, on the test client's, and on
hypothesis' integers, OIDs and mutated requests. Where the hand readers accept, pyasn1 must read the same values.
"""

from __future__ import annotations

import datetime as dt
import functools
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.type import univ
from pyasn1_modules import rfc3280, rfc4211

from service.ca import cmp_asn1 as asn1
from service.ca.cmp_confirm import read_cert_confirmation
from service.ca.cmp_crmf import read_cert_req_messages
from service.ca.cmp_der import AlgorithmId, generalized_time, integer, integer_der, oid_der, oid_text, split
from service.ca.cmp_message import build_header, load_pki_message
from service.ca.cmp_names import NULL_DN, directory_name
from service.ca.cmp_protection import load_mac_algorithm, mac_algorithm_identifier
from service.ca.cmp_response import certification_response
from service.ca.names import build_subject
from tests.ca.cmp_helpers import (
    PBM,
    Mac,
    Signature,
    cert_conf,
    cert_req_messages,
    cmp_ca,
    device,
    openssl,
    openssl_request,
    request,
    write_pem,
)
from tests.helpers import p256

DER = Encoding.DER
ORACLE = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def openssl_messages(tmp_path: Path) -> list[bytes]:
    key, certificate = device()
    cert, cert_key = str(write_pem(tmp_path, "c.pem", certificate)), str(write_pem(tmp_path, "c.key", key))
    new = str(write_pem(tmp_path, "n.key", p256()))
    out = str(tmp_path / "out.pem")
    return [
        openssl_request(tmp_path, "-cmd", "ir", "-ref", "r", "-secret", "pass:s", "-subject", "/CN=a.test/O=Org/OU=x",
                        "-newkey", new, "-certout", out, "-sans", "a.test 10.0.0.1 https://a.test/", "-days", "7",
                        "-implicit_confirm"),
        openssl_request(tmp_path, "-cmd", "cr", "-cert", cert, "-key", cert_key, "-newkey", new, "-certout", out),
        openssl_request(tmp_path, "-cmd", "kur", "-cert", cert, "-key", cert_key, "-newkey", new, "-certout", out),
        openssl_request(tmp_path, "-cmd", "rr", "-cert", cert, "-key", cert_key, "-oldcert", cert, "-revreason", "4"),
        openssl_request(tmp_path, "-cmd", "genm", "-ref", "r", "-secret", "pass:s", "-infotype", "caCerts"),
    ]  # fmt: skip


def pyasn1_header(der: bytes) -> Any:
    return asn1.decode(split(der)[0][1], asn1.PKI_HEADER)


def optional(value: Any) -> bytes | None:
    return value.asOctets() if value.isValue else None


# --- the header ----------------------------------------------------------------------------------------------------


def test_the_header_reads_as_pyasn1_reads_it(tmp_path: Path) -> None:
    key, certificate = device()
    messages = [
        *openssl_messages(tmp_path),
        request("certConf", cert_conf(b"h" * 32), Mac(b"s"), recip_nonce=b"r" * 16, pvno=3),
        request("ir", cert_req_messages(p256(), build_subject("b.test")), Signature(key, certificate)),
    ]
    for der in messages:
        header, oracle = load_pki_message(der).header, pyasn1_header(der)
        assert header.pvno == int(oracle["pvno"])
        assert header.sender == oracle["sender"].asOctets()
        assert header.recipient == oracle["recipient"].asOctets()
        assert header.transaction_id == oracle["transactionID"].asOctets()
        assert header.sender_nonce == oracle["senderNonce"].asOctets()
        assert header.recip_nonce == optional(oracle["recipNonce"])
        assert header.sender_kid == optional(oracle["senderKID"])
        assert header.message_time == oracle["messageTime"].asDateTime
        info = oracle["generalInfo"]
        asked = info.isValue and any(str(item["infoType"]) == "1.3.6.1.5.5.7.4.13" for item in info)
        assert header.implicit_confirm == asked
        algorithm = load_pki_message(der).protection_algorithm
        assert algorithm is not None and algorithm.oid == str(oracle["protectionAlg"]["algorithm"])


@pytest.mark.parametrize("implicit_confirm", [False, True])
@pytest.mark.parametrize("kid", [None, b"kid"])
@pytest.mark.parametrize("recip_nonce", [None, b"r" * 16])
def test_the_header_writes_as_pyasn1_writes_it(
    implicit_confirm: bool, kid: bytes | None, recip_nonce: bytes | None
) -> None:
    when = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    algorithm = AlgorithmId("1.2.840.113549.1.1.11", b"\x05\x00")
    sender, recipient = NULL_DN, directory_name(build_subject("x.test"))
    ours = build_header(pvno=2, sender=sender, recipient=recipient, now=when, protection_algorithm=algorithm,
                        sender_kid=kid, transaction_id=b"t" * 16, sender_nonce=b"n" * 16, recip_nonce=recip_nonce,
                        implicit_confirm=implicit_confirm)  # fmt: skip
    oracle = asn1.PKI_HEADER.clone()
    oracle["pvno"] = 2
    oracle["sender"] = univ.Any(sender)
    oracle["recipient"] = univ.Any(recipient)
    oracle["messageTime"] = "20310102030405Z"
    oracle["protectionAlg"]["algorithm"] = univ.ObjectIdentifier(algorithm.oid)
    oracle["protectionAlg"]["parameters"] = univ.Any(b"\x05\x00")
    if kid is not None:
        oracle["senderKID"] = kid
    oracle["transactionID"] = b"t" * 16
    oracle["senderNonce"] = b"n" * 16
    if recip_nonce is not None:
        oracle["recipNonce"] = recip_nonce
    if implicit_confirm:
        item = asn1.INFO_TYPE_AND_VALUE.clone()
        item["infoType"] = asn1.ID_IT_IMPLICIT_CONFIRM
        item["infoValue"] = univ.Any(b"\x05\x00")
        oracle["generalInfo"].append(item)
    assert ours == asn1.encode(oracle)


# --- CRMF ----------------------------------------------------------------------------------------------------------


def crmf_matches_pyasn1(body: bytes) -> None:
    (ours,) = read_cert_req_messages(body)
    (oracle,) = asn1.decode(body, asn1.CERT_REQ_MESSAGES)
    cert_req, template = oracle["certReq"], oracle["certReq"]["certTemplate"]
    assert ours.cert_req_id == int(cert_req["certReqId"])
    # the certReq exactly as sent (compared as values: pyasn1 re-encodes -128 as FF 80, see below)
    assert asn1.decode(ours.cert_req, rfc4211.CertRequest()) == cert_req
    assert ours.template.subject == (
        asn1.encode(template["subject"]["rdnSequence"]) if template["subject"].isValue else None
    )
    spki = b"\x30" + asn1.encode(template["publicKey"])[1:] if template["publicKey"].isValue else None
    assert ours.template.public_key == spki
    extensions = template["extensions"] if template["extensions"].isValue else []
    assert [(e.oid, e.critical, e.value) for e in ours.template.extensions] == [
        (str(e["extnID"]), bool(e["critical"]), e["extnValue"].asOctets()) for e in extensions
    ]
    if template["validity"].isValue and template["validity"]["notAfter"].isValue:
        assert ours.template.not_after == template["validity"]["notAfter"].getComponent().asDateTime
    controls = cert_req["controls"] if cert_req["controls"].isValue else []
    assert [(oid, value) for oid, value in ours.controls] == [(str(c["type"]), c["value"].asOctets()) for c in controls]
    popo = oracle["popo"]
    assert ours.pop.kind == (popo.getName() if popo.isValue else None)
    if ours.pop.kind == "signature":
        assert ours.pop.signature == popo["signature"]["signature"].asOctets()
        assert ours.pop.algorithm is not None
        assert ours.pop.algorithm.oid == str(popo["signature"]["algorithmIdentifier"]["algorithm"])


def test_crmf_reads_as_pyasn1_reads_it(tmp_path: Path) -> None:
    for der in openssl_messages(tmp_path)[:3]:
        crmf_matches_pyasn1(load_pki_message(der).body)
    _, certificate = device()
    for body in (
        cert_req_messages(p256(), build_subject("a.test"), sans=("a.test", "a@b.test"), old_certificate=certificate),
        cert_req_messages(p256(), None, pop="raVerified"),
        cert_req_messages(p256(), build_subject("a.test"), pop=None, public_key=False),
    ):
        crmf_matches_pyasn1(body)


@functools.cache
def a_request() -> bytes:
    return cert_req_messages(p256(), build_subject("a.test"), sans=("a.test",), old_certificate=device()[1])


@ORACLE
@given(st.data())
def test_where_the_crmf_reader_accepts_a_mutated_request_pyasn1_reads_the_same(data: st.DataObject) -> None:
    body = bytearray(a_request())
    for _ in range(data.draw(st.integers(1, 3))):
        body[data.draw(st.integers(0, len(body) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    try:
        (read,) = read_cert_req_messages(bytes(body))
    except (ValueError, UnicodeDecodeError):
        return
    if read.pop.kind in ("keyEncipherment", "keyAgreement"):
        return  # proofs pocketca refuses (badPOP) and so does not read further
    try:
        crmf_matches_pyasn1(bytes(body))
    except ValueError:  # pyasn1 refused what is DER: only acceptable where the RFC module is stricter in meaning
        pytest.fail("pyasn1 refused a CertReqMessages the hand reader took")


# --- the ip body, certConf, PBM ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ca_pubs", [False, True])
def test_the_ip_body_writes_as_pyasn1_writes_it(ca_pubs: bool) -> None:
    message = load_pki_message(request("ir", cert_req_messages(p256(), build_subject("a.test")), Mac(b"s")))
    _, certificate = cmp_ca().issue("a.test")
    anchors = [cmp_ca().certificate] if ca_pubs else []
    ours = certification_response(message, 0, certificate, ca_pubs=anchors).content
    oracle = asn1.CERT_REP_MESSAGE.clone()
    for anchor in anchors:
        oracle["caPubs"].append(univ.Any(anchor.public_bytes(DER)))
    response = asn1.CERT_RESPONSE.clone()
    response["certReqId"] = 0
    response["status"]["status"] = 0
    choice = response["certifiedKeyPair"]["certOrEncCert"]
    choice["certificate"] = choice.componentType["certificate"].asn1Object.clone(certificate.public_bytes(DER))
    oracle["response"].append(response)
    assert ours == asn1.encode(oracle)


def test_cert_conf_reads_as_pyasn1_reads_it() -> None:
    for rejected in (False, True):
        der = request("certConf", cert_conf(b"h" * 32, 0, rejected=rejected), Mac(b"s"), recip_nonce=b"r" * 16)
        message = load_pki_message(der)
        ours = read_cert_confirmation(message)
        (oracle,) = asn1.decode(message.body, asn1.CERT_CONFIRM_CONTENT)
        assert ours.cert_hash == oracle["certHash"].asOctets()
        assert ours.cert_req_id == int(oracle["certReqId"])
        assert ours.accepted == (not oracle["statusInfo"].isValue or int(oracle["statusInfo"]["status"]) == 0)


def test_pbm_parameters_read_and_write_as_pyasn1_does() -> None:
    identifier = mac_algorithm_identifier(PBM)
    assert identifier.parameters is not None
    oracle = asn1.decode(identifier.parameters, asn1.PBM_PARAMETER)
    assert oracle["salt"].asOctets() == PBM.salt
    assert int(oracle["iterationCount"]) == PBM.iterations
    assert str(oracle["owf"]["algorithm"]) == PBM.owf_oid and str(oracle["mac"]["algorithm"]) == PBM.mac_oid
    assert asn1.encode(oracle) == identifier.parameters
    assert load_mac_algorithm(identifier) == PBM


# --- primitives ----------------------------------------------------------------------------------------------------


@ORACLE
@given(st.integers(min_value=-(2**160), max_value=2**160) | st.sampled_from([-(2**n) for n in range(7, 160, 8)]))
def test_integers_write_minimal_and_read_back_as_pyasn1_reads_them(value: int) -> None:
    assert integer(integer_der(value)) == value  # integer() takes minimal encodings only
    assert int(asn1.decode(integer_der(value), univ.Integer())) == value


@pytest.mark.parametrize("value", [0, 1, -1, 127, 128, 255, 256, -128, -129, -256, -32768, -32769, 2**159 - 1])
def test_integers_write_as_openssl_writes_them(value: int, tmp_path: Path) -> None:
    """OpenSSL, not pyasn1, is the oracle here: pyasn1 0.6 writes -128 as 02 02 FF 80, which is not DER."""
    subprocess.run(
        [openssl(), "asn1parse", "-genstr", f"INTEGER:{value}", "-out", str(tmp_path / "i.der")],
        capture_output=True, check=True,
    )  # fmt: skip
    assert integer_der(value) == (tmp_path / "i.der").read_bytes()


@ORACLE
@given(st.integers(0, 2), st.integers(0, 39), st.lists(st.integers(0, 2**64), max_size=8))
def test_object_identifiers_write_and_read_as_pyasn1_does(first: int, second: int, rest: list[int]) -> None:
    dotted = ".".join(map(str, (first, second if first < 2 else second + 40, *rest)))
    assert oid_der(dotted) == asn1.encode(univ.ObjectIdentifier(dotted))
    assert oid_text(oid_der(dotted)) == dotted


@pytest.mark.parametrize(
    "der", [b"\x02\x02\x00\x01", b"\x02\x02\xff\x80", b"\x02\x00", b"\x06\x02\x80\x01", b"\x06\x01\x81"]
)
def test_non_minimal_integers_and_broken_oids_are_refused(der: bytes) -> None:
    with pytest.raises(ValueError):
        integer(der) if der[0] == 0x02 else oid_text(der)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        (b"20310102030405Z", dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
        (b"20310102030405.25Z", dt.datetime(2031, 1, 2, 3, 4, 5, 250000, tzinfo=dt.UTC)),
    ],
)
def test_generalized_time_reads(text: bytes, moment: dt.datetime) -> None:
    assert generalized_time(b"\x18" + bytes((len(text),)) + text) == moment


@pytest.mark.parametrize("text", [b"20310102030405", b"20310102030405.50Z", b"2031010203Z", b"20311302030405Z"])
def test_generalized_times_that_are_not_der_are_refused(text: bytes) -> None:
    with pytest.raises(ValueError):
        generalized_time(b"\x18" + bytes((len(text),)) + text)


def test_the_name_types_of_pyasn1_modules_encode_the_same_rdn_sequence() -> None:
    """The test client writes subjects through rfc3280; cryptography's own DER of the name is the same."""
    name = build_subject("a.test")
    assert asn1.encode(asn1.decode(name.public_bytes(), rfc3280.RDNSequence())) == name.public_bytes()
