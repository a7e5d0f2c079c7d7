"""Names: SANs typed from user text, and the subjects a CSR may ask for."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from service.ca.names import (
    build_subject,
    format_general_name,
    get_common_name,
    is_dns_name,
    parse_general_name,
    subject_violations,
)


def long_dns_name(length: int) -> str:
    """A DNS name of exactly `length` characters made of valid labels (63 characters at most each)."""
    labels: list[str] = []
    remaining = length
    while remaining > 0:
        size = min(63, remaining)
        if size == remaining or remaining - size - 1 > 0:
            labels.append("a" * size)
            remaining -= size + 1
        else:  # leave room for one more label after the dot
            labels.append("a" * (size - 2))
            remaining -= size - 1
    name = ".".join(labels)
    assert len(name) == length
    return name


# --- SANs that parse ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("www.example.com", x509.DNSName("www.example.com")),
        ("WWW.Example.COM", x509.DNSName("www.example.com")),
        ("localhost", x509.DNSName("localhost")),
        ("a-b.example.com", x509.DNSName("a-b.example.com")),
        ("*.example.com", x509.DNSName("*.example.com")),
        ("xn--bcher-kva.example", x509.DNSName("xn--bcher-kva.example")),
        ("  host.example.com  ", x509.DNSName("host.example.com")),
        ("192.0.2.1", x509.IPAddress(ipaddress.ip_address("192.0.2.1"))),
        ("127.0.0.1", x509.IPAddress(ipaddress.ip_address("127.0.0.1"))),
        ("2001:db8::1", x509.IPAddress(ipaddress.ip_address("2001:db8::1"))),
        ("::1", x509.IPAddress(ipaddress.ip_address("::1"))),
        ("alice@example.com", x509.RFC822Name("alice@example.com")),
        ("Alice@Example.COM", x509.RFC822Name("Alice@example.com")),
        ("https://example.com/path?q=1", x509.UniformResourceIdentifier("https://example.com/path?q=1")),
        ("spiffe://example.org/ns/prod/sa/web", x509.UniformResourceIdentifier("spiffe://example.org/ns/prod/sa/web")),
    ],
)
def test_plain_names_parse_to_their_kind(text: str, expected: x509.GeneralName) -> None:
    assert parse_general_name(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DNS:www.example.com", x509.DNSName("www.example.com")),
        ("dns:www.example.com", x509.DNSName("www.example.com")),
        ("DNS: www.example.com", x509.DNSName("www.example.com")),
        ("DNS:*.example.com", x509.DNSName("*.example.com")),
        ("IP:10.0.0.1", x509.IPAddress(ipaddress.ip_address("10.0.0.1"))),
        ("ip:10.0.0.1", x509.IPAddress(ipaddress.ip_address("10.0.0.1"))),
        ("IP:::1", x509.IPAddress(ipaddress.ip_address("::1"))),
        ("IP:2001:db8::5", x509.IPAddress(ipaddress.ip_address("2001:db8::5"))),
        ("email:alice@example.com", x509.RFC822Name("alice@example.com")),
        ("EMAIL:alice@example.com", x509.RFC822Name("alice@example.com")),
        ("URI:https://example.com/x", x509.UniformResourceIdentifier("https://example.com/x")),
        ("uri:spiffe://example.org/w", x509.UniformResourceIdentifier("spiffe://example.org/w")),
    ],
)
def test_openssl_prefixes_are_accepted(text: str, expected: x509.GeneralName) -> None:
    assert parse_general_name(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "IP:www.example.com",  # a prefix insists on its kind
        "IP:10.0.0.256",
        "email:www.example.com",
        "URI:www.example.com",
        "DNS:alice@example.com",
        "DNS:",
        "IP:",
    ],
)
def test_a_prefix_that_does_not_fit_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_general_name(text)


def test_label_of_63_and_name_of_253_characters_are_accepted() -> None:
    label = "a" * 63
    assert parse_general_name(f"{label}.example.com") == x509.DNSName(f"{label}.example.com")
    name = long_dns_name(253)
    assert parse_general_name(name) == x509.DNSName(name)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("foo bar.example.com", id="space"),
        pytest.param("exa\x00mple.com", id="nul"),
        pytest.param("example.com\x00", id="trailing-nul"),
        pytest.param("exa\x01mple.com", id="control"),
        pytest.param("exa\tmple.com", id="tab"),
        pytest.param("exa\x7fmple.com", id="del"),
        pytest.param("alice\x00@example.com", id="nul-in-email"),
        pytest.param("https://example.com/\x00", id="nul-in-uri"),
        pytest.param("a" * 64 + ".example.com", id="label-64"),
        pytest.param(long_dns_name(254), id="name-254"),
        pytest.param("-host.example.com", id="leading-hyphen"),
        pytest.param("host-.example.com", id="trailing-hyphen"),
        pytest.param("bücher.example", id="u-label"),
        pytest.param("例え.jp", id="u-label-cjk"),
        pytest.param("alice@bücher.example", id="u-label-email-domain"),
        pytest.param("a..b", id="empty-label"),
        pytest.param(".example.com", id="leading-dot"),
        pytest.param("example.com.", id="trailing-dot"),
        pytest.param("_srv.example.com", id="underscore"),
        pytest.param("*", id="bare-wildcard"),
        pytest.param("*.*.example.com", id="double-wildcard"),
        pytest.param("host.*.example.com", id="inner-wildcard"),
        pytest.param("f*o.example.com", id="partial-wildcard"),
        pytest.param("alice@", id="email-without-domain"),
        pytest.param("@example.com", id="email-without-local-part"),
        pytest.param("alice@bad..example.com", id="email-bad-domain"),
    ],
)
def test_bad_names_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_general_name(text)


def test_a_wildcard_name_over_253_characters_is_refused() -> None:
    """RFC 1035 caps the whole name at 253 characters; the `*.` counts too."""
    name = "*." + long_dns_name(252)
    assert len(name) == 254
    with pytest.raises(ValueError):
        parse_general_name(name)


def test_a_non_ascii_email_domain_is_refused_not_folded() -> None:
    """U+212A KELVIN SIGN lower-cases to an ASCII `k`: the name must be refused, not turned into another."""
    with pytest.raises(ValueError):
        parse_general_name("alice@\u212aexample.com")


def test_an_ipv6_zone_is_refused_not_dropped() -> None:
    """A SAN iPAddress is 16 octets: `%eth0` cannot be certified, so the name must not pass as if it could."""
    with pytest.raises(ValueError):
        parse_general_name("fe80::1%eth0")


def test_the_refusal_names_the_input() -> None:
    with pytest.raises(ValueError, match="foo bar"):
        parse_general_name("foo bar")


def test_is_dns_name_wildcard_switch() -> None:
    assert is_dns_name("*.example.com")
    assert not is_dns_name("*.example.com", allow_wildcard=False)
    assert is_dns_name("example.com", allow_wildcard=False)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("DNS:WWW.example.com", "www.example.com"),
        ("IP:10.0.0.1", "10.0.0.1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("email:alice@EXAMPLE.com", "alice@example.com"),
        ("URI:https://example.com/a", "https://example.com/a"),
    ],
)
def test_format_general_name_gives_the_canonical_text(text: str, shown: str) -> None:
    formatted = format_general_name(parse_general_name(text))
    assert formatted == shown
    assert parse_general_name(formatted) == parse_general_name(text)


def test_format_general_name_marks_unsupported_kinds() -> None:
    directory = x509.DirectoryName(build_subject("x"))
    assert format_general_name(directory) == "unsupported:DirectoryName"
    assert format_general_name(x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4"))) == "unsupported:RegisteredID"


# --- subjects -----------------------------------------------------------------------------------------


def attr(oid: x509.ObjectIdentifier, value: str) -> x509.NameAttribute[str]:
    return x509.NameAttribute(oid, value)


def test_build_subject_and_get_common_name() -> None:
    subject = build_subject("alice")
    assert subject == x509.Name([attr(NameOID.COMMON_NAME, "alice")])
    assert get_common_name(subject) == "alice"
    assert get_common_name(x509.Name([attr(NameOID.ORGANIZATION_NAME, "Acme")])) is None


def test_a_plain_subject_has_no_violations() -> None:
    assert subject_violations(build_subject("host.example.com")) == []


def test_every_allowed_attribute_is_accepted() -> None:
    subject = x509.Name(
        [
            attr(NameOID.COUNTRY_NAME, "DE"),
            attr(NameOID.STATE_OR_PROVINCE_NAME, "Berlin"),
            attr(NameOID.LOCALITY_NAME, "Berlin"),
            attr(NameOID.ORGANIZATION_NAME, "Acme"),
            attr(NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops"),
            attr(NameOID.DOMAIN_COMPONENT, "example"),
            attr(NameOID.USER_ID, "alice"),
            attr(NameOID.SERIAL_NUMBER, "42"),
            attr(NameOID.EMAIL_ADDRESS, "alice@example.com"),
            attr(NameOID.COMMON_NAME, "alice"),
        ]
    )
    assert subject_violations(subject) == []


def test_missing_common_name_is_refused() -> None:
    problems = subject_violations(x509.Name([attr(NameOID.ORGANIZATION_NAME, "Acme")]))
    assert problems == ["the subject must hold exactly one common name (CN)"]


def test_empty_subject_is_refused() -> None:
    assert subject_violations(x509.Name([])) == ["the subject must hold exactly one common name (CN)"]


def test_two_common_names_are_refused() -> None:
    subject = x509.Name([attr(NameOID.COMMON_NAME, "a.example.com"), attr(NameOID.COMMON_NAME, "b.example.com")])
    assert subject_violations(subject) == ["the subject must hold exactly one common name (CN)"]


@pytest.mark.parametrize(
    "oid", [NameOID.TITLE, NameOID.GIVEN_NAME, x509.ObjectIdentifier("1.2.3.4.5")], ids=lambda o: o.dotted_string
)
def test_unknown_attributes_are_refused(oid: x509.ObjectIdentifier) -> None:
    problems = subject_violations(x509.Name([attr(NameOID.COMMON_NAME, "alice"), attr(oid, "x")]))
    assert len(problems) == 1
    assert oid.dotted_string in problems[0] and "not allowed" in problems[0]


def test_a_common_name_over_64_characters_is_refused() -> None:
    with pytest.warns(UserWarning):  # cryptography warns too; a CSR made elsewhere can still carry one
        too_long = x509.NameAttribute(NameOID.COMMON_NAME, "a" * 65, _validate=False)
    problems = subject_violations(x509.Name([too_long]))
    assert problems == ["subject attribute commonName is longer than 64 characters"]


def test_a_common_name_of_64_characters_is_accepted() -> None:
    assert subject_violations(build_subject("a" * 64)) == []


def test_other_attribute_limits_apply() -> None:
    subject = x509.Name([attr(NameOID.COMMON_NAME, "alice"), attr(NameOID.ORGANIZATION_NAME, "o" * 65)])
    problems = subject_violations(subject)
    assert len(problems) == 1 and "organizationName" in problems[0] and "64" in problems[0]


@pytest.mark.parametrize(
    ("value", "shown"),
    [("ali\x00ce", "U+0000"), ("alice\n", "U+000A"), ("al\x1bice", "U+001B"), ("alice\x7f", "U+007F")],
)
def test_control_characters_are_refused(value: str, shown: str) -> None:
    problems = subject_violations(build_subject(value))
    assert problems == [f"subject attribute commonName holds control or format characters ({shown})"]


def test_blank_attribute_is_refused() -> None:
    subject = x509.Name([attr(NameOID.COMMON_NAME, "alice"), attr(NameOID.ORGANIZATION_NAME, "  ")])
    assert subject_violations(subject) == ["subject attribute organizationName is empty"]


def test_every_subject_problem_is_reported() -> None:
    subject = x509.Name(
        [
            attr(NameOID.ORGANIZATION_NAME, "Ac\x00me"),
            attr(NameOID.TITLE, "boss"),
            attr(NameOID.LOCALITY_NAME, "l" * 129),
        ]
    )
    problems = subject_violations(subject)
    assert len(problems) == 4
    assert any("common name" in p for p in problems)
    assert any("control or format characters" in p for p in problems)
    assert any("not allowed" in p for p in problems)
    assert any("longer than 128" in p for p in problems)
