"""Names nobody should get are refused on every way in: POST /csr, POST /pkcs12, enrollment tokens (REST and
console), the console's New person page and the CLI. Characters of categories Cc, Cf, Zl, Zp in a CN or another
subject attribute, a subject of 500 OUs, a wildcard over a public suffix, an A-label that is not IDNA 2008, a
name with a trailing dot."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from service.cli import main
from service.settings import Settings
from tests.api.conftest import bearer
from tests.conftest import ApiClient
from tests.helpers import p256

pytestmark = pytest.mark.anyio

HOSTILE_CNS = {
    "U+0085": "web\u0085.example",
    "U+009B": "web\u009b.example",
    "U+202E": "evil\u202egro.example",
    "U+200B": "pay\u200bpal.example",
    "U+2028": "web\u2028.example",
    "U+2029": "web\u2029.example",
}
BAD_DNS = {
    "*.com": "public suffix",
    "*.co.uk": "public suffix",
    "xn--zz.example": "IDNA 2008",
    "www.example.com..": "empty label",
}


def csr(subject: x509.Name, dns: list[str] | None = None) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if dns:
        names = [x509.DNSName(d) for d in dns]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(p256(), hashes.SHA256()).public_bytes(Encoding.PEM).decode()


def cn(value: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value)])


async def post_csr(api: ApiClient, token: str, pem: str, profile: str = "server") -> dict[str, object]:
    response = await api.http.post("/csr", json={"csr": pem, "profile": profile}, headers=bearer(token))
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document: dict[str, object] = response.json()
    return document


@pytest.mark.parametrize("code", list(HOSTILE_CNS))
async def test_post_csr_refuses_a_cn_with_such_a_character(api: ApiClient, admin_token: str, code: str) -> None:
    document = await post_csr(api, admin_token, csr(cn(HOSTILE_CNS[code]), ["web.example"]))
    assert any(code in v for v in document["violations"]), document  # type: ignore[attr-defined]


async def test_post_csr_refuses_such_a_character_in_another_attribute(api: ApiClient, admin_token: str) -> None:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "web.example"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme\u202e Corp"),
        ]
    )
    document = await post_csr(api, admin_token, csr(subject, ["web.example"]))
    assert document["violations"] == ["subject attribute organizationName holds control or format characters (U+202E)"]


async def test_post_csr_refuses_a_subject_of_500_ous(api: ApiClient, admin_token: str) -> None:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, "web.example")]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"unit {i}") for i in range(500)]
    pem = csr(x509.Name(attributes), ["web.example"])
    assert len(pem) > 11_000  # the issue's 11.5 KB
    document = await post_csr(api, admin_token, pem)
    assert document["violations"] == ["the subject has 501 attributes; at most 16 are allowed"]


@pytest.mark.parametrize("name", list(BAD_DNS))
async def test_post_csr_refuses_a_bad_dns_san(api: ApiClient, admin_token: str, name: str) -> None:
    document = await post_csr(api, admin_token, csr(cn("web.example"), ["web.example", name]))
    assert any(BAD_DNS[name] in v for v in document["violations"]), document  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", list(BAD_DNS))
async def test_post_csr_refuses_a_bad_dns_cn(api: ApiClient, admin_token: str, name: str) -> None:
    document = await post_csr(api, admin_token, csr(cn(name), ["web.example"]))
    assert any(BAD_DNS[name] in v for v in document["violations"]), document  # type: ignore[attr-defined]


async def test_post_csr_still_issues_a_wildcard_above_a_registrable_domain(api: ApiClient, admin_token: str) -> None:
    pem = csr(cn("*.example.com"), ["*.example.com", "xn--bcher-kva.example"])
    response = await api.http.post("/csr", json={"csr": pem, "profile": "server"}, headers=bearer(admin_token))
    assert response.status_code == 201, response.text
    assert response.json()["sans"] == ["*.example.com", "xn--bcher-kva.example"]


@pytest.mark.parametrize("code", list(HOSTILE_CNS))
async def test_post_pkcs12_refuses_such_a_cn(api: ApiClient, admin_token: str, code: str) -> None:
    body = {"cn": HOSTILE_CNS[code], "password": "correct horse battery", "legacy": True}
    response = await api.http.post("/pkcs12", json=body, headers=bearer(admin_token))
    assert response.status_code == 403, response.text
    assert code in response.json()["detail"]


@pytest.mark.parametrize(("name", "says"), list(BAD_DNS.items()))
async def test_an_enrollment_token_refuses_a_bad_dns_name(
    api: ApiClient, admin_token: str, name: str, says: str
) -> None:
    for body in [{"cn": "web", "sans": [name]}, {"cn": name}]:
        response = await api.http.post("/tokens", json=body, headers=bearer(admin_token))
        assert response.status_code == 400, response.text
        assert says in response.json()["detail"]


def _where(settings: Settings) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--database-url", settings.sqlalchemy_url]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["issue", "--cn", HOSTILE_CNS["U+202E"]], "U+202E"),
        (["issue", "--cn", "web", "--san", "*.com"], "public suffix"),
        (["issue", "--cn", "web", "--san", "xn--zz.example"], "IDNA 2008"),
        (["token", "create", "--cn", "web", "--san", "www.example.com.."], "empty label"),
        (["token", "create", "--cn", "web\u2028"], "U+2028"),
        (["token", "create", "--cn", "web\udcff"], "U+DCFF"),  # what Python makes of the argument byte 0xff
    ],
    ids=["issue-rlo", "issue-wildcard", "issue-a-label", "token-dot", "token-ls", "token-surrogate"],
)
def test_the_cli_refuses_them_with_one_line(
    settings: Settings, prepared: object, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    extra = ["--out-dir", str(tmp_path / "out")] if argv[0] == "issue" else []
    assert main([*argv, *_where(settings), *extra]) == 4
    captured = capsys.readouterr()
    assert says in captured.err and len(captured.err.strip().splitlines()) == 1, captured.err
    assert captured.out == ""
