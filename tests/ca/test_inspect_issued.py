"""summarize_issued: the summary of a leaf the CA just built, from the names it was built with, must be exactly
what summarize() reads back from the certificate (the API, the database row and /whoami all show it)."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from service.ca.csr import load_csr, read_request
from service.ca.inspect import summarize, summarize_issued
from service.ca.issue import build_ca_certificate, build_leaf_builder, random_serial_number
from service.ca.keys import PrivateKey, signature_hash
from service.ca.names import build_subject, parse_general_name
from service.ca.policy import LeafSpec, decide
from service.ca.profiles import BUILTIN_PROFILES
from service.keys.file_key import FileKeyStore
from tests.helpers import p256

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)  # X.509 times hold whole seconds
PUBLIC_URL = "https://ca.example.test:8443"


def _ca(key: PrivateKey, subject: x509.Name | str) -> x509.Certificate:
    if isinstance(subject, str):
        return build_ca_certificate(key, subject, now=NOW, lifetime=dt.timedelta(days=3650))
    # an imported CA may have any subject: several attributes, a multi-valued RDN, other string types
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    return builder.sign(key, signature_hash(key))


@pytest.fixture(scope="module")
def cas() -> dict[str, tuple[PrivateKey, x509.Certificate]]:
    """A P-256 and an RSA-2048 CA as bootstrap makes them, and a P-256 CA with an imported-looking subject."""
    p256_key, rsa_key, odd_key = p256(), rsa.generate_private_key(public_exponent=65537, key_size=2048), p256()
    odd_subject = x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")]),
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Prüf GmbH, Abt. #2"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "PKI", _ASN1Type.BMPString),
                ]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "Wurzel-CA 日本")]),
        ]
    )
    return {
        "p256": (p256_key, _ca(p256_key, "pocketca test CA")),
        "rsa2048": (rsa_key, _ca(rsa_key, "pocketca test CA")),  # the same name as the P-256 CA, another key
        "p256-imported-subject": (odd_key, _ca(odd_key, odd_subject)),
    }


@pytest.fixture(scope="module")
def rsa_leaf_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _sign(
    ca: tuple[PrivateKey, x509.Certificate], spec: LeafSpec, public_key: CertificatePublicKeyTypes
) -> x509.Certificate:
    key, certificate = ca
    builder = build_leaf_builder(
        spec, public_key, certificate, serial_number=random_serial_number(), now=NOW, public_url=PUBLIC_URL
    )
    return FileKeyStore(key).sign_certificate(builder)


def _assert_same(certificate: x509.Certificate, spec: LeafSpec, issuer: x509.Certificate) -> None:
    der = certificate.public_bytes(Encoding.DER)
    assert summarize_issued(certificate, der, spec.subject, spec.sans, issuer) == summarize(certificate)


def _spec(cn: str, names: list[str], profile: str = "server") -> LeafSpec:
    sans = tuple(parse_general_name(name) for name in names)
    return LeafSpec(build_subject(cn), cn, sans, BUILTIN_PROFILES[profile], 30)


SPECS = {
    "cn-only": ("svc.example.com", ["svc.example.com"]),
    "cn-only-no-sans": ("just a label", []),
    "dns-ip-email-uri": (
        "svc.example.com",
        [
            "svc.example.com",
            "*.svc.example.com",
            "10.0.0.7",
            "2001:db8::1",
            "ops@example.com",
            "spiffe://example.org/svc",
        ],
    ),
    "prefixed-and-upper-case": (
        "Svc.Example.COM",
        [
            "DNS:Svc.Example.COM",
            "IP:192.0.2.1",
            "email:Ops@Example.COM",
            "URI:https://example.org/a?b=c#d",
            "::ffff:192.0.2.9",
        ],
    ),
    "non-ascii-cn": ("Zoë Ångström 日本語", ["zoe@example.com"]),
    "rfc4514-special-characters": (' #lead, "quoted" + a;b <c> \\ trail ', ["x.example.com"]),
    "long-cn": ("a" * 64, ["a.example.com"]),
}


@pytest.mark.parametrize("ca_name", ["p256", "rsa2048", "p256-imported-subject"])
@pytest.mark.parametrize("case", list(SPECS))
def test_summarize_issued_equals_summarize(
    cas: dict[str, tuple[PrivateKey, x509.Certificate]], ca_name: str, case: str
) -> None:
    cn, names = SPECS[case]
    spec = _spec(cn, names)
    certificate = _sign(cas[ca_name], spec, p256().public_key())
    _assert_same(certificate, spec, cas[ca_name][1])


def test_rsa_leaf_key(cas: dict[str, tuple[PrivateKey, x509.Certificate]], rsa_leaf_key: rsa.RSAPrivateKey) -> None:
    spec = _spec("svc.example.com", ["svc.example.com", "10.0.0.7"])
    for ca in cas.values():
        certificate = _sign(ca, spec, rsa_leaf_key.public_key())
        _assert_same(certificate, spec, ca[1])


def test_issuers_do_not_mix(cas: dict[str, tuple[PrivateKey, x509.Certificate]]) -> None:
    """The issuer name is cached per CA certificate: each leaf still names its own issuer."""
    spec = _spec("svc.example.com", ["svc.example.com"])
    seen = set()
    for ca in (cas["p256"], cas["p256-imported-subject"], cas["rsa2048"], cas["p256"]):
        leaf = _sign(ca, spec, p256().public_key())
        summary = summarize_issued(leaf, leaf.public_bytes(Encoding.DER), spec.subject, spec.sans, ca[1])
        assert summary.issuer == ca[1].subject.rfc4514_string()
        seen.add(summary.issuer)
    # a multi-valued RDN is a DER SET: OU sorts before O
    assert seen == {"CN=pocketca test CA", "CN=Wurzel-CA 日本,OU=PKI+O=Prüf GmbH\\, Abt. #2,C=DE"}


def _csr(key: PrivateKey, subject: x509.Name, names: list[x509.GeneralName]) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, signature_hash(key)).public_bytes(Encoding.PEM)


CSR_SUBJECTS = {
    "cn-only": x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "svc.example.com")]),
    "many-attributes": x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NO", _ASN1Type.PrintableString),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Trøndelag"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Trondheim"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ørsted & Søn, AS"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ops+dev"),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example"),
            x509.NameAttribute(NameOID.USER_ID, "u-42"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "0042"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@example.com"),
            x509.NameAttribute(NameOID.COMMON_NAME, "svc.example.com"),
        ]
    ),
    "multi-valued-rdn": x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "svc.example.com"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
                ]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "US")]),
        ]
    ),
    # every string type a CSR may use, non-ASCII included: each is re-encoded as it came and reads back the same
    "string-types": x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "svc.example.com", _ASN1Type.IA5String),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Zoë", _ASN1Type.T61String),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "日本", _ASN1Type.UniversalString),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Zoë", _ASN1Type.IA5String),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Ørsted", _ASN1Type.VisibleString),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "12 34", _ASN1Type.NumericString),
        ]
    ),
    "bmp-string-cn": x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Zoë 日本", _ASN1Type.BMPString)]),
}


@pytest.mark.parametrize("ca_name", ["p256", "rsa2048"])
@pytest.mark.parametrize("subject", list(CSR_SUBJECTS))
def test_through_a_csr_and_the_policy(
    cas: dict[str, tuple[PrivateKey, x509.Certificate]], ca_name: str, subject: str
) -> None:
    """As Authority._prepare does it: the CSR read, policy deciding the subject and the SANs, then signed."""
    names: list[x509.GeneralName] = [
        x509.DNSName("svc.example.com"),
        x509.DNSName("API.Example.com"),  # policy lower-cases it
        x509.IPAddress(ipaddress.ip_address("2001:db8::7")),
        x509.RFC822Name("ops@example.com"),
        x509.UniformResourceIdentifier("spiffe://example.org/ns/prod/sa/svc"),
        x509.DNSName("svc.example.com"),  # a duplicate policy drops
    ]
    key = ec.generate_private_key(ec.SECP384R1())
    request = read_request(load_csr(_csr(key, CSR_SUBJECTS[subject], names)))
    spec = decide(request, BUILTIN_PROFILES["peer"], 30)
    certificate = _sign(cas[ca_name], spec, request.public_key)
    _assert_same(certificate, spec, cas[ca_name][1])
    summary = summarize(certificate)
    assert summary.sans[:5] == ("svc.example.com", "api.example.com", "2001:db8::7", "ops@example.com", names[4].value)
