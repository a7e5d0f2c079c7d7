"""Name constraints: the RFC 5280 matching rules, and the refusal before signing (pure logic, no I/O)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re

import pytest
from cryptography import x509

from service.ca.constraints import (
    ConstraintSpec,
    build_name_constraints,
    constraint_violations,
    dns_within,
    email_within,
)
from service.ca.issue import build_ca_certificate, build_intermediate_builder
from service.ca.keys import signature_hash
from tests.helpers import p256


@pytest.mark.parametrize(
    ("name", "constraint", "inside"),
    [
        ("example.com", "example.com", True),
        ("a.b.example.com", "example.com", True),
        ("badexample.com", "example.com", False),  # a suffix of labels, never of characters
        ("example.com", ".example.com", False),  # a leading dot: only names under it
        ("www.example.com", ".example.com", True),
        ("WWW.Example.COM", "example.com", True),
        ("example.org", "example.com", False),
    ],
)
def test_dns_subtrees(name: str, constraint: str, inside: bool) -> None:
    assert dns_within(name, constraint) is inside


@pytest.mark.parametrize(
    ("address", "constraint", "inside"),
    [
        ("alice@example.com", "example.com", True),
        ("alice@mail.example.com", "example.com", False),
        ("alice@mail.example.com", ".example.com", True),
        ("alice@example.com", "alice@example.com", True),
        ("bob@example.com", "alice@example.com", False),
    ],
)
def test_email_subtrees(address: str, constraint: str, inside: bool) -> None:
    assert email_within(address, constraint) is inside


def _issuer(spec: ConstraintSpec) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    root_key, key = p256(), p256()
    root = build_ca_certificate(root_key, "root", now=now, lifetime=dt.timedelta(days=30))
    builder = build_intermediate_builder(
        key.public_key(), "issuing", root, now=now, lifetime=dt.timedelta(days=10),
        name_constraints=build_name_constraints(spec),
    )  # fmt: skip
    return builder.sign(root_key, signature_hash(root_key))


def test_permitted_and_excluded_names_of_each_type() -> None:
    issuer = _issuer(
        ConstraintSpec(
            permitted_dns=("example.com",),
            excluded_dns=("secret.example.com",),
            permitted_ip=("10.0.0.0/8",),
            excluded_ip=("10.9.0.0/16",),
            permitted_email=("example.com",),
        )
    )
    ok = [
        x509.DNSName("api.example.com"),
        x509.IPAddress(ipaddress.ip_address("10.1.2.3")),
        x509.RFC822Name("alice@example.com"),
        x509.UniformResourceIdentifier("spiffe://anything/x"),  # no URI constraint: not limited
    ]
    assert constraint_violations(ok, [issuer]) == []
    bad = [
        x509.DNSName("api.example.org"),
        x509.DNSName("db.secret.example.com"),
        x509.IPAddress(ipaddress.ip_address("10.9.1.1")),
        x509.IPAddress(ipaddress.ip_address("192.168.1.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),  # an IPv6 address is in no IPv4 range
        x509.RFC822Name("eve@evil.test"),
    ]
    problems = constraint_violations(bad, [issuer])
    assert len(problems) == len(bad)
    assert problems[0] == "DNS api.example.org is outside the permitted names of the issuing CA (CN=issuing)"
    assert "DNS db.secret.example.com is excluded" in problems[1]
    assert "IP 10.9.1.1 is excluded" in problems[2]


def test_no_constraints_allow_everything_and_bad_specs_are_named() -> None:
    assert build_name_constraints(ConstraintSpec()) is None
    assert constraint_violations([x509.DNSName("anything.test")], [_issuer(ConstraintSpec())]) == []
    with pytest.raises(ValueError, match=re.escape("'exa mple.com' is not a DNS suffix")):
        build_name_constraints(ConstraintSpec(permitted_dns=("exa mple.com",)))
    with pytest.raises(ValueError, match=re.escape("'10.0.0.1/8' is not an IP range")):
        build_name_constraints(ConstraintSpec(permitted_ip=("10.0.0.1/8",)))
    with pytest.raises(ValueError, match="not an email domain"):
        build_name_constraints(ConstraintSpec(excluded_email=("@",)))


def test_the_intermediate_carries_path_length_and_critical_constraints() -> None:
    issuer = _issuer(ConstraintSpec(permitted_dns=("example.com",)))
    basic = issuer.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    constraints = issuer.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical and constraints.value.permitted_subtrees == [x509.DNSName("example.com")]
