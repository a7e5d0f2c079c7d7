"""pkilint (RFC 5280 / RFC 6960 linters nobody here wrote) over everything the CA signs: the root, intermediates with
and without name constraints and after a rotation, leaves of every profile (built in and configured) for P-256,
P-384, RSA-2048 and Ed25519 keys, an ACME certificate, an issuer's CRL with entries, the root's CRL, and good,
revoked and unknown OCSP responses. No finding of WARNING or worse, except those allowed below by name, each with
the reason it does not apply to a private CA."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from service.authority import AcmeCaller, Authority, LocalCaller
from service.ca.constraints import ConstraintSpec
from service.ca.issue import issuer_id, random_serial_number
from service.cli import main
from service.datadir.build import build_authority
from service.datadir.offline_root import init_intermediate
from service.datadir.prepare import prepare
from service.datadir.rotation import rotate_with_root
from tests.hierarchy import ROOT_PASSPHRASE

PUBLICATION = "http://ca.example.com:8080"  # a name relying parties resolve (to pkilint "localhost" is none)
PROFILES = """
[profiles.tsa]
extended_key_usage = ["timeStamping"]
[profiles.codesign]
extended_key_usage = ["codeSigning"]
[profiles.mail]
extended_key_usage = ["emailProtection", "clientAuth"]
"""
KEYS = {
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "rsa2048": lambda: rsa.generate_private_key(65537, 2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}
# (finding code, what its message names) -> why the finding is wrong for a private CA
ALLOWED: dict[tuple[str, str], str] = {
    ("pkix.invalid_uri_syntax", '"spiffe://'): "pkilint knows web URI schemes only; a SPIFFE ID is an RFC 3986 URI",
}


def _allowed(finding: tuple[str, str, str]) -> bool:
    return any(code == finding[1] and named in finding[2] for code, named in ALLOWED)


def _validator(kind: str) -> Any:
    """The validator container each pkilint command builds (pkilint/bin/lint_pkix_cert.py, lint_crl.py with the PKIX
    profile, lint_ocsp_response.py), without its file handling."""
    from pkilint import pkix
    from pkilint.pkix import certificate, crl, extension, name, ocsp

    decoders = [
        pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
        pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
    ]
    if kind == "cert":
        return certificate.create_pkix_certificate_validator_container(
            certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
            [
                certificate.create_issuer_validator_container([]),
                certificate.create_validity_validator_container(),
                certificate.create_subject_validator_container([]),
                certificate.create_extensions_validator_container([]),
                certificate.create_spki_validator_container([]),
            ],
        )
    if kind in ("crl", "arl"):
        return crl.create_pkix_crl_validator_container(
            decoders,
            [
                crl.create_issuer_validator_container([]),
                crl.create_validity_validator_container([]),
                crl.create_extensions_validator_container([]),
            ],
        )
    return ocsp.create_pkix_ocsp_response_validator_container([ocsp.create_response_decoder(), *decoders], [])


def _lint(kind: str, der: bytes) -> list[tuple[str, str, str]]:
    """(severity, code, message) of each finding at WARNING or worse."""
    from pkilint import loader
    from pkilint.validation import ValidationFindingSeverity

    loaders = {
        "cert": loader.RFC5280CertificateDocumentLoader,
        "crl": loader.RFC5280CertificateListDocumentLoader,
        "arl": loader.RFC5280CertificateListDocumentLoader,
        "ocsp": loader.RFC6960OCSPResponseDocumentLoader,
    }
    document = loaders[kind]().load_der_document(der, kind)
    return [
        (finding.finding.severity.name, finding.finding.code, finding.message or "")
        for result in _validator(kind).validate(document.root)
        for finding in result.finding_descriptions
        if finding.finding.severity <= ValidationFindingSeverity.WARNING
    ]


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, bytes]]]:
    """name -> (linter, DER) for every kind of object the CA signs."""
    from tests.conftest import make_settings

    base = tmp_path_factory.mktemp("lint")
    found: dict[str, tuple[str, bytes]] = {}
    constrained = make_settings(base / "constrained", publication_url=PUBLICATION, server_names=["ca.example.com"])
    spec = ConstraintSpec(
        permitted_dns=("example.com",), permitted_ip=("10.0.0.0/8",), excluded_dns=("secret.example.com",)
    )
    found["intermediate with name constraints"] = (
        "cert",
        init_intermediate(constrained, base / "root-c.pem", ROOT_PASSPHRASE, constraints=spec).public_bytes(
            Encoding.DER
        ),
    )

    settings = make_settings(base / "data", publication_url=PUBLICATION)
    settings.data_dir.mkdir(parents=True, mode=0o700)
    (settings.data_dir / "profiles.toml").write_text(PROFILES)
    root_file = base / "root.pem"
    first = init_intermediate(settings, root_file, ROOT_PASSPHRASE)
    found["intermediate"] = ("cert", first.public_bytes(Encoding.DER))
    prepare(settings)
    authority: Authority = build_authority(settings)
    try:
        found["root"] = ("cert", authority.chain[-1].public_bytes(Encoding.DER))
        sans = ["svc.example.com", "10.0.0.7", "2001:db8::7", "ops@example.com", "spiffe://example.com/svc"]
        for profile in sorted(authority.profiles):
            for key_type, make in KEYS.items():
                issued = authority.issue_for_key(make().public_key(), cn="svc.example.com", sans=sans, profile=profile)
                found[f"leaf {profile} {key_type}"] = ("cert", issued.certificate.public_bytes(Encoding.DER))
        csr = (
            x509.CertificateSigningRequestBuilder(x509.Name([]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("acme.example.com")]), critical=False)
            .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
        )
        caller = AcmeCaller("lint", frozenset({"acme.example.com"}))
        acme = authority.sign_acme_csr(csr.public_bytes(Encoding.PEM), caller=caller, profile="server")
        found["ACME certificate"] = ("cert", acme.certificate.public_bytes(Encoding.DER))

        good = authority.issue_for_key(KEYS["p256"]().public_key(), cn="good.example.com", sans=[]).certificate
        revoked = authority.issue_for_key(KEYS["p256"]().public_key(), cn="gone.example.com", sans=[]).certificate
        authority.revoke(format(revoked.serial_number, "x"), reason="keyCompromise", caller=LocalCaller("lint"))
        authority.crls.refresh(wait=True)
        crl = authority.current_crl()
        assert len(x509.load_der_x509_crl(crl.der)) == 1
        found["CRL with entries"] = ("crl", crl.der)
        issuer = authority.ca_certificate
        for name, subject in (("good", good), ("revoked", revoked)):
            request = ocsp.OCSPRequestBuilder().add_certificate(subject, issuer, hashes.SHA1()).build()
            found[f"OCSP {name}"] = ("ocsp", authority.answer_ocsp(request.public_bytes(Encoding.DER))[0])
        unknown = x509.load_der_x509_certificate(good.public_bytes(Encoding.DER))
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate_by_hash(
                ocsp.OCSPRequestBuilder().add_certificate(unknown, issuer, hashes.SHA1()).build().issuer_name_hash,
                ocsp.OCSPRequestBuilder().add_certificate(unknown, issuer, hashes.SHA1()).build().issuer_key_hash,
                random_serial_number(),
                hashes.SHA1(),
            )
            .build()
        )
        found["OCSP unknown"] = ("ocsp", authority.answer_ocsp(request.public_bytes(Encoding.DER))[0])
        assert ocsp.load_der_ocsp_response(found["OCSP unknown"][1]).certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    finally:
        authority.close()

    rotate_with_root(settings, root_file, ROOT_PASSPHRASE)
    found["intermediate after a rotation"] = (
        "cert",
        x509.load_pem_x509_certificate((settings.data_dir / "ca.pem").read_bytes()).public_bytes(Encoding.DER),
    )
    (base / "pass").write_bytes(ROOT_PASSPHRASE + b"\n")
    old_id = issuer_id(first)
    revoke = ["--revoke", old_id, "--reason", "keyCompromise"]
    assert main(["ca", "crl", "--data-dir", str(settings.data_dir), "--root-file", str(root_file),
                 "--root-passphrase-file", str(base / "pass"), *revoke]) == 0  # fmt: skip
    (root_crl,) = (settings.data_dir / "root-crls").glob("*.crl")
    found["root CRL with an entry"] = ("arl", root_crl.read_bytes())
    yield found


NAMES = [
    "root",
    "intermediate",
    "intermediate with name constraints",
    "intermediate after a rotation",
    *[f"leaf {p} {k}" for p in ("client", "codesign", "mail", "peer", "server", "tsa") for k in KEYS],
    "ACME certificate",
    "CRL with entries",
    "root CRL with an entry",
    "OCSP good",
    "OCSP revoked",
    "OCSP unknown",
]


@pytest.mark.parametrize("name", NAMES)
def test_pkilint_finds_nothing_wrong(documents: dict[str, tuple[str, bytes]], name: str) -> None:
    kind, der = documents[name]
    findings = [f for f in _lint(kind, der) if not _allowed(f)]
    assert findings == [], findings


def test_the_linter_can_fail() -> None:
    """The negative control: a CA certificate pkilint must fault (basicConstraints not critical, no keyUsage, no key
    identifiers) yields errors, so an empty list above means something."""
    key = ec.generate_private_key(ec.SECP256R1())
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bad CA")])
    bad = (
        x509.CertificateBuilder(name, name, key.public_key(), random_serial_number(), now, now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=False)
        .sign(key, hashes.SHA256())
    )
    findings = _lint("cert", bad.public_bytes(Encoding.DER))
    assert any(severity == "ERROR" for severity, _, _ in findings), findings
