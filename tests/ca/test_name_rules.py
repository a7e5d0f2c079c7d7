"""Names nobody should get, at the pure level: characters of Unicode categories Cc, Cf, Zl and Zp (and lone
surrogates) in any name, a wildcard over a public suffix, an A-label that does not decode under IDNA 2008, a
trailing dot, and a subject too many attributes or too many bytes long."""

from __future__ import annotations

import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from service.ca.csr import CertificateRequest
from service.ca.names import (
    MAX_SUBJECT_ATTRIBUTES,
    MAX_SUBJECT_DER_BYTES,
    build_subject,
    forbidden_characters,
    is_dns_name,
    parse_general_name,
    subject_violations,
)
from service.ca.policy import decide
from service.ca.profiles import BUILTIN_PROFILES, parse_profiles
from service.errors import PolicyError

# the characters, and one of each other refused category
HOSTILE = {
    "U+0085": "\u0085",  # NEXT LINE (Cc)
    "U+009B": "\u009b",  # CONTROL SEQUENCE INTRODUCER (Cc)
    "U+202E": "\u202e",  # RIGHT-TO-LEFT OVERRIDE (Cf)
    "U+200B": "\u200b",  # ZERO WIDTH SPACE (Cf)
    "U+FEFF": "\ufeff",  # ZERO WIDTH NO-BREAK SPACE (Cf)
    "U+2028": "\u2028",  # LINE SEPARATOR (Zl)
    "U+2029": "\u2029",  # PARAGRAPH SEPARATOR (Zp)
    "U+D800": "\ud800",  # a lone surrogate (Cs)
}


def request(subject: x509.Name, sans: tuple[x509.GeneralName, ...] = ()) -> CertificateRequest:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    cn = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return CertificateRequest(subject, str(cn[0].value) if cn else None, sans, key)


@pytest.mark.parametrize("code", [c for c in HOSTILE if c != "U+D800"])  # cryptography builds no such CN
def test_a_cn_with_a_control_format_or_separator_character_is_refused(code: str) -> None:
    cn = f"gro{HOSTILE[code]}ogle.example"
    assert subject_violations(build_subject(cn)) == [
        f"subject attribute commonName holds control or format characters ({code})"
    ]


@pytest.mark.parametrize("code", list(HOSTILE))
def test_every_subject_attribute_refuses_them(code: str) -> None:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"Ops{HOSTILE[code]}"),
        ]
    )
    assert subject_violations(subject) == [
        f"subject attribute organizationalUnitName holds control or format characters ({code})"
    ]


@pytest.mark.parametrize("code", list(HOSTILE))
@pytest.mark.parametrize("form", ["alice{}@example.com", "https://example.com/a{}b", "spiffe://ex{}ample.org/x"])
def test_email_and_uri_sans_refuse_them(code: str, form: str) -> None:
    with pytest.raises(ValueError, match=code.replace("+", r"\+")):
        parse_general_name(form.format(HOSTILE[code]))


def test_ordinary_text_passes_and_each_character_is_named_once() -> None:
    assert forbidden_characters("Zoë Ångström, Straße 5 (東京)") == []
    assert forbidden_characters("a\u202eb\u202ec\x00") == ["U+202E", "U+0000"]


@pytest.mark.parametrize(
    "name",
    ["*.com", "*.co.uk", "*.kawasaki.jp", "*.corp", "*.internal", "*.xn--p1ai", "*", "*.", "a.*.example.com"],
)
def test_a_wildcard_over_a_public_suffix_or_not_leftmost_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a valid DNS name"):
        parse_general_name(name)
    assert not is_dns_name(name)


@pytest.mark.parametrize("name", ["*.example.com", "*.example.co.uk", "*.city.kawasaki.jp", "*.example.corp"])
def test_a_wildcard_above_a_registrable_domain_is_accepted(name: str) -> None:
    assert parse_general_name(name) == x509.DNSName(name)


def test_a_profile_pattern_may_still_name_one_label_under_a_private_top_level_name() -> None:
    profiles = parse_profiles({"profiles": {"client": {"allowed_dns": ["*.corp", ".internal"]}}})
    assert profiles["client"].names.dns == ("*.corp", ".internal")


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("xn--zz.example", "not a valid IDNA 2008 A-label"),
        ("xn--a.example", "not a valid IDNA 2008 A-label"),  # U+0080
        ("xn--ls8h.example", "not a valid IDNA 2008 A-label"),  # an emoji: not PVALID in IDNA 2008
        ("XN--ZZ.example", "not a valid IDNA 2008 A-label"),
        ("ab--cd.example", "reserved form"),
        ("www.example.com..", "empty label"),
        ("www.example.com.", "empty label"),
    ],
)
def test_bad_a_labels_and_trailing_dots_are_refused_with_the_reason(name: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_general_name(name)


@pytest.mark.parametrize("name", ["xn--bcher-kva.example", "xn--nxasmq6b.example", "shop.xn--55qx5d"])
def test_valid_a_labels_are_accepted(name: str) -> None:
    assert parse_general_name(name) == x509.DNSName(name)


@pytest.mark.parametrize("cn", ["*.com", "www.example.com..", "xn--zz.example", "*.corp"])
def test_a_cn_written_as_a_bad_dns_name_is_refused_even_beside_a_good_san(cn: str) -> None:
    with pytest.raises(PolicyError) as refused:
        decide(request(build_subject(cn), (x509.DNSName("a.example"),)), BUILTIN_PROFILES["server"], None)
    assert any("written as a DNS name" in v for v in refused.value.violations), refused.value.violations


@pytest.mark.parametrize("cn", ["Alice Smith", "v1.2", "build_42", "10.0.0.7"])
def test_other_cns_are_free_text(cn: str) -> None:
    decide(request(build_subject(cn), (x509.DNSName("a.example"),)), BUILTIN_PROFILES["server"], None)


def ous(count: int, value: str = "Ops") -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, "alice")]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{value}{i}") for i in range(count)]
    return x509.Name(attributes)


def test_a_subject_of_500_ous_is_refused_at_once() -> None:
    started = time.perf_counter()
    with pytest.raises(PolicyError) as refused:
        decide(request(ous(499)), BUILTIN_PROFILES["client"], None)
    assert refused.value.violations == [f"the subject has 500 attributes; at most {MAX_SUBJECT_ATTRIBUTES} are allowed"]
    assert time.perf_counter() - started < 1


def test_the_attribute_count_limit_is_exact() -> None:
    assert subject_violations(ous(MAX_SUBJECT_ATTRIBUTES - 1)) == []
    assert subject_violations(ous(MAX_SUBJECT_ATTRIBUTES)) == [
        f"the subject has {MAX_SUBJECT_ATTRIBUTES + 1} attributes; at most {MAX_SUBJECT_ATTRIBUTES} are allowed"
    ]


def test_a_subject_over_the_der_size_limit_is_refused() -> None:
    big = "ü" * 62  # 124 octets of UTF-8 each, within the 64-character limit with the number
    subject = ous(MAX_SUBJECT_ATTRIBUTES - 1, big)
    size = len(subject.public_bytes())
    assert size > MAX_SUBJECT_DER_BYTES
    assert subject_violations(subject) == [
        f"the subject is {size} bytes of DER; at most {MAX_SUBJECT_DER_BYTES} are allowed"
    ]


@pytest.mark.parametrize("name", ["example.com\n", "*.example.com\n", "a\n.example.com"])
def test_a_newline_is_no_part_of_a_dns_name(name: str) -> None:
    """A regex's `$` matches before a final newline: the ACME identifier `example.com\n` passed the label check."""
    assert not is_dns_name(name)
