"""The ACME identifier policy on its own (service.ca.identifiers): the defaults, the more-specific-wins rule,
zone ids, the IPv4-embedding IPv6 forms, and the service's own names, refused whatever the lists say."""

from __future__ import annotations

import ipaddress

import pytest

from service.ca.identifiers import DEFAULT_ALLOW, DEFAULT_DENY, IdentifierPolicy, parse_entries, parse_entry

OWN = ["localhost", "127.0.0.1", "::1", "ca.corp.example"]
DEFAULTS = IdentifierPolicy.build(DEFAULT_ALLOW, DEFAULT_DENY, OWN)


def address(policy: IdentifierPolicy, text: str) -> str | None:
    return policy.refusal_for_address(ipaddress.ip_address(text))


# the list, and the rest of the special-purpose blocks: each refused by default
REFUSED_ADDRESSES = [
    "127.0.0.1", "127.0.0.2", "::1", "0.0.0.0", "::", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1",
    "169.254.169.254", "fe80::1", "fe80::1%eth0", "224.0.0.1", "ff02::1", "255.255.255.255", "240.0.0.1",
    "192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1", "198.18.0.1", "2002:7f00:1::1", "2001::1",
    "64:ff9b::7f00:1", "192.0.0.8", "100::1",
]  # fmt: skip
ALLOWED_ADDRESSES = ["10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1", "100.64.0.1", "fd00::1", "fc00::5"]


@pytest.mark.parametrize("text", REFUSED_ADDRESSES)
def test_special_purpose_addresses_are_refused_by_default(text: str) -> None:
    assert address(DEFAULTS, text) is not None


@pytest.mark.parametrize("text", ALLOWED_ADDRESSES)
def test_private_networks_stay_allowed(text: str) -> None:
    assert address(DEFAULTS, text) is None


def test_public_addresses_match_nothing_in_the_default_allow_list() -> None:
    assert address(DEFAULTS, "8.8.8.8") == "8.8.8.8 matches nothing in POCKETCA_ACME_ALLOW"
    assert "POCKETCA_ACME_ALLOW" in (address(DEFAULTS, "2606:4700::1111") or "")


@pytest.mark.parametrize("name", ["localhost", "a.localhost", "deep.a.localhost", "*.localhost"])
def test_localhost_and_every_name_below_it_are_refused(name: str) -> None:
    assert DEFAULTS.refusal_for_name(name) is not None


@pytest.mark.parametrize("name", ["web.internal", "intranet", "*.apps.internal", "xn--bcher-kva.example"])
def test_other_dns_names_are_allowed_by_the_lone_dot(name: str) -> None:
    assert DEFAULTS.refusal_for_name(name) is None


def test_the_reason_names_the_value_and_the_entry() -> None:
    refusal = "169.254.169.254 is in 169.254.0.0/16, which POCKETCA_ACME_DENY refuses"
    assert address(DEFAULTS, "169.254.169.254") == refusal
    assert "zone id" in (address(DEFAULTS, "fe80::1%eth0") or "")
    assert DEFAULTS.refusal_for_name("a.localhost") == "a.localhost is in localhost, which POCKETCA_ACME_DENY refuses"


def test_an_allow_entry_more_specific_than_the_deny_entry_wins_and_an_equal_one_does_not() -> None:
    one_loopback = IdentifierPolicy.build([*DEFAULT_ALLOW, "127.0.1.1/32"], DEFAULT_DENY)
    assert address(one_loopback, "127.0.1.1") is None
    assert address(one_loopback, "127.0.1.2") is not None  # the rest of 127/8 stays refused
    as_wide = IdentifierPolicy.build([*DEFAULT_ALLOW, "127.0.0.0/8"], DEFAULT_DENY)
    assert address(as_wide, "127.0.1.1") is not None  # not more specific than the deny entry: deny wins
    names = IdentifierPolicy.build([".", "dev.localhost"], DEFAULT_DENY)
    assert names.refusal_for_name("app.dev.localhost") is None
    assert names.refusal_for_name("other.localhost") is not None


def test_a_deny_entry_narrows_the_allow_list() -> None:
    policy = IdentifierPolicy.build(DEFAULT_ALLOW, [*DEFAULT_DENY, "10.9.0.0/16", ".corp.example"])
    assert address(policy, "10.9.1.1") is not None and address(policy, "10.8.1.1") is None
    assert policy.refusal_for_name("corp.example") is not None  # the suffix covers the name itself
    assert policy.refusal_for_name("www.corp.example") is not None
    assert policy.refusal_for_name("notcorp.example") is None


def test_a_wildcard_is_refused_when_it_would_cover_a_denied_name() -> None:
    policy = IdentifierPolicy.build(DEFAULT_ALLOW, ["admin.corp.example"])
    assert policy.refusal_for_name("*.corp.example") is not None
    assert policy.refusal_for_name("*.other.example") is None
    assert policy.refusal_for_name("www.corp.example") is None


def test_the_services_own_names_and_addresses_are_refused_whatever_the_lists_say() -> None:
    everything = IdentifierPolicy.build(["0.0.0.0/0", "::/0", "."], [], OWN)
    assert address(everything, "127.0.0.5") is None  # nothing denied...
    for text in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert "own address" in (address(everything, text) or "")  # ...but the service's own
    assert "own name" in (everything.refusal_for_name("localhost") or "")
    assert "own name" in (everything.refusal_for_name("ca.corp.example") or "")
    assert "would cover ca.corp.example" in (everything.refusal_for_name("*.corp.example") or "")
    assert everything.refusal_for_name("www.corp.example") is None


def test_entries_parse_networks_addresses_and_suffixes_and_name_a_bad_one() -> None:
    assert parse_entry("10.0.0.0/8").network == ipaddress.ip_network("10.0.0.0/8")
    assert parse_entry("10.1.2.3").specificity == 32
    assert parse_entry(".Corp.Example").labels == ("corp", "example")
    assert parse_entry("corp.example").labels == ("corp", "example")
    assert parse_entry(".").labels == () and parse_entry(".").specificity == 0
    assert len(parse_entries(DEFAULT_DENY)) == len(DEFAULT_DENY) and parse_entries("") == ()
    for bad in ("10.0.0.0/33", "not a name", "fe80::1%eth0", "-x.example"):
        with pytest.raises(ValueError, match="neither a network"):
            parse_entry(bad)
