"""Policy: what a CSR may become, with every broken rule reported at once."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from service.ca.csr import CertificateRequest, load_csr, read_request
from service.ca.keys import PrivateKey
from service.ca.names import build_subject
from service.ca.policy import LeafSpec, PolicyContext, decide
from service.ca.profiles import BUILTIN_PROFILES, NameRules, Profile
from service.errors import PolicyError
from tests.helpers import p256

CLIENT = BUILTIN_PROFILES["client"]
SERVER = BUILTIN_PROFILES["server"]
PEER = BUILTIN_PROFILES["peer"]


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return p256()


@pytest.fixture(scope="module")
def rsa1024() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


@pytest.fixture(scope="module")
def rsa2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_request(
    key: PrivateKey,
    cn: str | None = "host.example.com",
    sans: list[x509.GeneralName] | None = None,
    *,
    extra: list[x509.NameAttribute[str]] | None = None,
) -> CertificateRequest:
    """A real CSR, signed, serialised and loaded back the way the API reads one."""
    attributes = ([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn is not None else []) + (extra or [])
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    digest = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = builder.sign(key, digest)
    return read_request(load_csr(csr.public_bytes(Encoding.DER)))


def dns(*names: str) -> list[x509.GeneralName]:
    return [x509.DNSName(name) for name in names]


def refused(request: CertificateRequest, profile: Profile = CLIENT, days: int | None = None, **ctx: Any) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        decide(request, profile, days, PolicyContext(**ctx))
    assert caught.value.detail == "; ".join(caught.value.violations)
    return caught.value.violations


# --- what an accepted request becomes -----------------------------------------------------------------


def test_decide_returns_the_leaf_spec(key: ec.EllipticCurvePrivateKey) -> None:
    ip = x509.IPAddress(ipaddress.ip_address("10.0.0.1"))
    request = make_request(key, "host.example.com", [x509.DNSName("host.example.com"), ip])
    spec = decide(request, SERVER, 30)
    assert spec == LeafSpec(
        subject=build_subject("host.example.com"),
        common_name="host.example.com",
        sans=(x509.DNSName("host.example.com"), ip),
        profile=SERVER,
        validity_days=30,
    )


def test_validity_defaults_to_the_profile_default(key: ec.EllipticCurvePrivateKey) -> None:
    assert decide(make_request(key), CLIENT, None).validity_days == 90
    short = replace(CLIENT, default_validity_days=7)
    assert decide(make_request(key), short, None).validity_days == 7


@pytest.mark.parametrize(
    ("cn", "name"),
    [
        ("host.example.com", x509.DNSName("host.example.com")),
        ("Host.Example.COM", x509.DNSName("host.example.com")),
        ("alice@example.com", x509.RFC822Name("alice@example.com")),
        ("10.1.2.3", x509.IPAddress(ipaddress.ip_address("10.1.2.3"))),
    ],
)
def test_a_cn_that_is_a_name_becomes_a_san(key: ec.EllipticCurvePrivateKey, cn: str, name: x509.GeneralName) -> None:
    spec = decide(make_request(key, cn, None), CLIENT, None)
    assert spec.sans == (name,)
    assert spec.common_name == cn


def test_the_cn_is_added_after_the_requested_sans(key: ec.EllipticCurvePrivateKey) -> None:
    spec = decide(make_request(key, "a.example.com", dns("b.example.com")), CLIENT, None)
    assert spec.sans == (x509.DNSName("b.example.com"), x509.DNSName("a.example.com"))


def test_a_cn_already_among_the_sans_is_not_repeated(key: ec.EllipticCurvePrivateKey) -> None:
    spec = decide(make_request(key, "Host.Example.com", dns("b.example.com", "host.example.com")), CLIENT, None)
    assert spec.sans == (x509.DNSName("b.example.com"), x509.DNSName("host.example.com"))


def test_a_cn_that_is_not_a_name_is_kept_out_of_the_sans(key: ec.EllipticCurvePrivateKey) -> None:
    spec = decide(make_request(key, "Alice Smith", dns("alice.example.com")), CLIENT, None)
    assert spec.common_name == "Alice Smith"
    assert spec.sans == (x509.DNSName("alice.example.com"),)


def test_a_certificate_needs_some_name(key: ec.EllipticCurvePrivateKey) -> None:
    problems = refused(make_request(key, "Alice Smith", None))
    assert len(problems) == 1 and "needs a name" in problems[0]


def test_sans_are_normalised_and_deduplicated(key: ec.EllipticCurvePrivateKey) -> None:
    request = make_request(key, "Alice Smith", dns("WWW.Example.COM", "www.example.com"))
    assert decide(request, CLIENT, None).sans == (x509.DNSName("www.example.com"),)


def test_the_subject_keeps_only_the_profiles_attributes(key: ec.EllipticCurvePrivateKey) -> None:
    organisation = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme")
    request = make_request(key, "host.example.com", None, extra=[organisation])
    assert decide(request, CLIENT, None).subject == x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "host.example.com"), organisation]
    )
    cn_only = replace(CLIENT, subject_attributes=frozenset({NameOID.COMMON_NAME}))
    assert decide(request, cn_only, None).subject == build_subject("host.example.com")


@pytest.mark.parametrize("profile", [CLIENT, SERVER, PEER], ids=lambda p: p.name)
def test_every_builtin_profile_accepts_a_plain_request(key: ec.EllipticCurvePrivateKey, profile: Profile) -> None:
    spec = decide(make_request(key), profile, None)
    assert spec.profile is profile


# --- all violations at once ---------------------------------------------------------------------------


def test_every_violation_is_reported_at_once(rsa1024: rsa.RSAPrivateKey) -> None:
    title = x509.NameAttribute(NameOID.TITLE, "boss")
    request = make_request(rsa1024, "host.example.com", dns("-bad.example.com"), extra=[title])
    problems = refused(request, CLIENT, 400)
    assert len(problems) >= 4
    assert any("1024 bits" in p for p in problems)  # the key
    assert any("not allowed" in p and NameOID.TITLE.dotted_string in p for p in problems)  # the subject
    assert any("-bad.example.com" in p for p in problems)  # a name
    assert any("365" in p and "400" in p for p in problems)  # the validity


# --- keys ---------------------------------------------------------------------------------------------


def test_weak_rsa_key_is_refused(rsa1024: rsa.RSAPrivateKey) -> None:
    problems = refused(make_request(rsa1024))
    assert len(problems) == 1 and "1024" in problems[0]


def test_dsa_key_is_refused() -> None:
    problems = refused(make_request(dsa.generate_private_key(key_size=1024)))
    assert len(problems) == 1 and "DSA" in problems[0]


def test_unknown_curve_is_refused() -> None:
    problems = refused(make_request(ec.generate_private_key(ec.SECP256K1())))
    assert problems == ["key type secp256k1 is not accepted"]


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP521R1()], ids=lambda c: c.name)
def test_other_nist_curves_are_accepted(curve: ec.EllipticCurve) -> None:
    assert decide(make_request(ec.generate_private_key(curve)), CLIENT, None).common_name == "host.example.com"


def test_ed25519_and_rsa2048_are_accepted(rsa2048: rsa.RSAPrivateKey) -> None:
    expected = LeafSpec(
        subject=build_subject("host.example.com"),
        common_name="host.example.com",
        sans=(x509.DNSName("host.example.com"),),
        profile=CLIENT,
        validity_days=90,
    )
    assert decide(make_request(ed25519.Ed25519PrivateKey.generate()), CLIENT, None) == expected
    assert decide(make_request(rsa2048), CLIENT, None) == expected


def test_a_profile_can_narrow_key_types(key: ec.EllipticCurvePrivateKey, rsa2048: rsa.RSAPrivateKey) -> None:
    ec_only = replace(CLIENT, key_types=frozenset({"p256"}))
    assert decide(make_request(key), ec_only, None).profile == ec_only
    problems = refused(make_request(rsa2048), ec_only)
    assert len(problems) == 1 and "rsa2048" in problems[0]


def test_a_profile_can_raise_the_rsa_minimum(rsa2048: rsa.RSAPrivateKey) -> None:
    problems = refused(make_request(rsa2048), replace(CLIENT, min_rsa_bits=3072))
    assert len(problems) == 1 and "3072" in problems[0]


# --- subjects -----------------------------------------------------------------------------------------


def test_a_request_without_cn_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    problems = refused(make_request(key, None, dns("host.example.com")))
    assert any("common name" in p for p in problems)


def test_two_cns_are_refused(key: ec.EllipticCurvePrivateKey) -> None:
    second = x509.NameAttribute(NameOID.COMMON_NAME, "other.example.com")
    problems = refused(make_request(key, "host.example.com", None, extra=[second]))
    assert any("exactly one common name" in p for p in problems)


def test_control_characters_in_the_subject_are_refused(key: ec.EllipticCurvePrivateKey) -> None:
    organisation = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ac\x07me")
    problems = refused(make_request(key, "host.example.com", None, extra=[organisation]))
    assert problems == ["subject attribute organizationName holds control or format characters (U+0007)"]


# --- validity -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [0, -1, -365])
def test_validity_below_one_day_is_refused(key: ec.EllipticCurvePrivateKey, days: int) -> None:
    assert refused(make_request(key), CLIENT, days) == ["validity_days must be at least 1"]


@pytest.mark.parametrize(("profile", "maximum"), [(CLIENT, 365), (SERVER, 397), (PEER, 397)], ids=["c", "s", "p"])
def test_validity_over_the_profile_maximum_is_refused(
    key: ec.EllipticCurvePrivateKey, profile: Profile, maximum: int
) -> None:
    assert decide(make_request(key), profile, maximum).validity_days == maximum
    assert decide(make_request(key), profile, 1).validity_days == 1
    problems = refused(make_request(key), profile, maximum + 1)
    assert len(problems) == 1 and str(maximum) in problems[0] and str(maximum + 1) in problems[0]


# --- names --------------------------------------------------------------------------------------------


def test_a_malformed_san_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    problems = refused(make_request(key, "Alice Smith", dns("ok.example.com", "bad name.example.com")))
    assert len(problems) == 1 and "bad name.example.com" in problems[0]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        (x509.DirectoryName(build_subject("x")), "DirectoryName"),
        (x509.OtherName(x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), b"\x0c\x05alice"), "OtherName"),
        (x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4")), "RegisteredID"),
    ],
    ids=["DirectoryName", "OtherName", "RegisteredID"],
)
def test_unsupported_san_types_are_refused(key: ec.EllipticCurvePrivateKey, name: x509.GeneralName, kind: str) -> None:
    problems = refused(make_request(key, "host.example.com", [x509.DNSName("host.example.com"), name]))
    assert problems == [f"SAN type {kind} is not allowed"]


def test_more_sans_than_the_profile_allows_are_refused(key: ec.EllipticCurvePrivateKey) -> None:
    limit = CLIENT.max_sans
    names = [f"h{i}.example.com" for i in range(limit)]
    assert len(decide(make_request(key, names[0], dns(*names)), CLIENT, None).sans) == limit
    names.append(f"h{limit}.example.com")
    problems = refused(make_request(key, names[0], dns(*names)))
    assert len(problems) == 1 and str(limit) in problems[0] and str(limit + 1) in problems[0]


def test_the_cn_counts_towards_the_san_limit(key: ec.EllipticCurvePrivateKey) -> None:
    two = replace(CLIENT, max_sans=2)
    decide(make_request(key, "a.example.com", dns("b.example.com")), two, None)
    problems = refused(make_request(key, "a.example.com", dns("b.example.com", "c.example.com")), two)
    assert len(problems) == 1 and "at most 2 SANs" in problems[0]


def test_profile_name_rules_apply(key: ec.EllipticCurvePrivateKey) -> None:
    internal = replace(CLIENT, names=NameRules(dns=(".internal.example",), ip=(), email=None, uri=None))
    decide(make_request(key, "a.internal.example"), internal, None)
    problems = refused(make_request(key, "a.internal.example", dns("evil.example.com")), internal)
    assert len(problems) == 1 and "evil.example.com" in problems[0]
    ip = x509.IPAddress(ipaddress.ip_address("10.0.0.1"))
    problems = refused(make_request(key, "a.internal.example", [ip]), internal)
    assert len(problems) == 1 and "10.0.0.1" in problems[0]


# --- the caller's context -----------------------------------------------------------------------------

RENEWAL: dict[str, Any] = {
    "allowed_names": frozenset({"a.example.com", "b.example.com"}),
    "required_common_name": "a.example.com",
}


def test_renewal_may_ask_for_the_same_names_or_fewer(key: ec.EllipticCurvePrivateKey) -> None:
    ctx = PolicyContext(**RENEWAL)
    same = decide(make_request(key, "a.example.com", dns("b.example.com")), CLIENT, None, ctx)
    assert {name.value for name in same.sans} == {"a.example.com", "b.example.com"}
    fewer = decide(make_request(key, "a.example.com", None), CLIENT, None, ctx)
    assert fewer.sans == (x509.DNSName("a.example.com"),)


def test_renewal_refuses_an_extra_name(key: ec.EllipticCurvePrivateKey) -> None:
    problems = refused(make_request(key, "a.example.com", dns("b.example.com", "c.example.com")), **RENEWAL)
    assert problems == ["name 'c.example.com' is not one the caller may request"]


def test_renewal_refuses_a_changed_cn(key: ec.EllipticCurvePrivateKey) -> None:
    problems = refused(make_request(key, "b.example.com", None), **RENEWAL)
    assert problems == ["the CN must be 'a.example.com'"]


def test_renewal_refuses_a_cn_that_differs_only_in_case(key: ec.EllipticCurvePrivateKey) -> None:
    problems = refused(make_request(key, "A.example.com", None), **RENEWAL)
    assert any("the CN must be" in p for p in problems)


def test_enrollment_token_needs_exactly_its_names(key: ec.EllipticCurvePrivateKey) -> None:
    ctx: dict[str, Any] = {
        "exact_names": frozenset({"a.example.com", "b.example.com"}),
        "required_common_name": "a.example.com",
    }
    decide(make_request(key, "a.example.com", dns("b.example.com")), CLIENT, None, PolicyContext(**ctx))
    fewer = refused(make_request(key, "a.example.com", None), **ctx)
    assert len(fewer) == 1 and "exactly the names" in fewer[0]
    more = refused(make_request(key, "a.example.com", dns("b.example.com", "c.example.com")), **ctx)
    assert len(more) == 1 and "exactly the names" in more[0]
