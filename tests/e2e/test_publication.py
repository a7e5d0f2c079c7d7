"""The plain-HTTP publication listener, checked by outside relying parties: NSS vfychain (OCSP and CRL fetching),
`openssl verify -crl_download`, GnuTLS ocsptool and curl. Each answers right for a good and a revoked leaf."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID

from service.ca.issue import issuer_id
from tests.conftest import LiveServer, database_url_for, start_server
from tests.helpers import csr_pem, free_port, p256


def _run(*argv: str, timeout: float = 60) -> tuple[int, str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    print(f"$ {' '.join(argv)}\n{output}(exit {result.returncode})")  # shown with -s: the closing note quotes it
    return result.returncode, output


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("publication") / "data", workers=2)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def leaves(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A good and a revoked server-profile leaf, PEM and DER, plus the CA in DER and an NSS database trusting it."""
    out = tmp_path_factory.mktemp("leaves")
    paths: dict[str, Path] = {}
    with server.client(headers={"Authorization": f"Bearer {server.admin_token}"}) as http:
        for name in ("good", "revoked"):
            csr = csr_pem(p256(), f"{name}.example", [f"{name}.example"]).decode()
            response = http.post("/csr", json={"csr": csr, "profile": "server"})
            assert response.status_code == 201, response.text
            certificate = x509.load_pem_x509_certificate(response.json()["certificate"].encode())
            (out / f"{name}.pem").write_bytes(certificate.public_bytes(Encoding.PEM))
            (out / f"{name}.der").write_bytes(certificate.public_bytes(Encoding.DER))
            paths[name], paths[f"{name}.der"] = out / f"{name}.pem", out / f"{name}.der"
            if name == "revoked":
                revoked = http.post(f"/certs/{response.json()['serial']}/revoke", json={"reason": "keyCompromise"})
                assert revoked.status_code == 200
    ca = x509.load_pem_x509_certificate(server.ca_file.read_bytes())
    (out / "ca.der").write_bytes(ca.public_bytes(Encoding.DER))
    paths["ca.der"] = out / "ca.der"
    if shutil.which("certutil"):
        nss = out / "nss"
        nss.mkdir()
        subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True, timeout=30)
        subprocess.run(
            ["certutil", "-A", "-d", f"sql:{nss}", "-n", "pocketca", "-t", "CT,C,C", "-i", str(out / "ca.der")],
            check=True,
            timeout=30,
        )
        paths["nss"] = nss
    _wait_for_crl_with_entry(server)
    return paths


def _wait_for_crl_with_entry(server: LiveServer) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        crl = x509.load_der_x509_crl(httpx.get(f"{server.http_url}/crl", timeout=10).content)
        if len(list(crl)) >= 1:
            return
        time.sleep(0.2)
    raise AssertionError("the CRL never listed the revoked leaf")


def test_new_certificates_point_at_the_publication_url(server: LiveServer, leaves: dict[str, Path]) -> None:
    certificate = x509.load_pem_x509_certificate(leaves["good"].read_bytes())
    # each issuer's own CRL and certificate (issue 14: they stay right after a rotation); OCSP is one responder
    issuer = issuer_id(x509.load_pem_x509_certificate((server.data_dir / "ca.pem").read_bytes()))
    cdp = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in cdp[0].full_name or []] == [f"{server.http_url}/crl/{issuer}"]
    aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert {(d.access_method, d.access_location.value) for d in aia} == {
        (AuthorityInformationAccessOID.OCSP, f"{server.http_url}/ocsp"),
        (AuthorityInformationAccessOID.CA_ISSUERS, f"{server.http_url}/ca.crt/{issuer}"),
    }
    with httpx.Client(timeout=10) as plain:  # both are served on the plain listener
        assert plain.get(f"{server.http_url}/crl/{issuer}").status_code == 200
        assert plain.get(f"{server.http_url}/ca.crt/{issuer}").content == certificate_der(server)


def test_plain_http_serves_the_signed_objects_with_the_https_caching(server: LiveServer) -> None:
    with server.client() as https, httpx.Client(base_url=server.http_url, timeout=10) as plain:
        for path in ("/crl", "/crl.pem", "/ca.crt", "/ca"):
            over_tls, over_http = https.get(path), plain.get(path)
            assert over_http.status_code == 200, path
            assert over_http.content == over_tls.content, path
            assert over_http.headers["content-type"] == over_tls.headers["content-type"], path
            head = plain.head(path)
            assert head.status_code == 200 and head.content == b"", path
            assert head.headers["content-length"] == str(len(over_http.content)), path
        deadline = time.monotonic() + 10  # the access log line follows the response
        while time.monotonic() < deadline and not all(f"HEAD {p} 200" in server.log() for p in ("/crl", "/ca")):
            time.sleep(0.1)
        assert all(f"HEAD {p} 200" in server.log() for p in ("/crl", "/crl.pem", "/ca.crt", "/ca"))
        crl = plain.get("/crl")
        for header in ("etag", "cache-control", "expires", "last-modified"):
            assert plain.head("/crl").headers[header] == crl.headers[header] == https.get("/crl").headers[header]
        assert "max-age=" in crl.headers["cache-control"]
        assert plain.get("/crl", headers={"If-None-Match": crl.headers["etag"]}).status_code == 304
        assert plain.get("/crl", headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/certs"),
        ("GET", "/healthz"),
        ("GET", "/whoami"),
        ("POST", "/csr"),
        ("POST", "/tokens"),
        ("GET", "/audit"),
        ("GET", "/openapi.json"),
        ("DELETE", "/crl"),
        ("POST", "/crl"),
        ("GET", "/ocsp"),
        ("GET", "/"),
    ],
)
def test_plain_http_serves_nothing_else(server: LiveServer, method: str, path: str) -> None:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    response = httpx.request(method, f"{server.http_url}{path}", headers=headers, timeout=10, json={"csr": "x"})
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "use HTTPS" in response.json()["detail"]
    with server.client() as https:  # the HTTPS endpoints stay
        assert https.get("/healthz").status_code == 200


def test_plain_http_is_behind_the_same_limits(server: LiveServer) -> None:
    """The body and head limits of HTTPS (64 KiB, 16 KiB by default) hold on the plain listener too."""
    with httpx.Client(base_url=server.http_url, timeout=10) as plain:
        big = plain.post("/ocsp", content=b"0" * (64 * 1024 + 1), headers={"Content-Type": "application/ocsp-request"})
        assert big.status_code == 413 and big.headers["content-type"] == "application/problem+json"
        head = plain.get("/crl", headers={"X-Padding": "x" * (17 * 1024)})
        assert head.status_code == 431
        garbage = plain.post("/ocsp", content=b"not ocsp", headers={"Content-Type": "application/ocsp-request"})
        assert garbage.status_code == 200 and garbage.headers["content-type"] == "application/ocsp-response"


def test_curl_fetches_the_crl_and_gets_404_for_the_api(server: LiveServer, leaves: dict[str, Path]) -> None:
    code, out = _run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{content_type}\n", f"{server.http_url}/crl")
    assert code == 0 and out.strip() == "200 application/pkix-crl"
    code, out = _run("curl", "-sS", "-w", "\n%{http_code}\n", f"{server.http_url}/certs")
    assert code == 0 and out.strip().endswith("404") and '"status":404' in out


def test_ocsp_over_plain_http(server: LiveServer, leaves: dict[str, Path]) -> None:
    ocsp = ["openssl", "ocsp", "-issuer", str(server.ca_file), "-CAfile", str(server.ca_file)]
    code, out = _run(*ocsp, "-cert", str(leaves["good"]), "-url", f"{server.http_url}/ocsp")
    assert code == 0 and "Response verify OK" in out and f"{leaves['good']}: good" in out
    code, out = _run(*ocsp, "-cert", str(leaves["revoked"]), "-url", f"{server.http_url}/ocsp")
    assert code == 0 and "Response verify OK" in out and f"{leaves['revoked']}: revoked" in out


@pytest.mark.skipif(shutil.which("vfychain") is None, reason="needs libnss3-tools")
@pytest.mark.parametrize("method", ["ocsp", "crl"])
def test_nss_vfychain_checks_revocation(leaves: dict[str, Path], method: str) -> None:
    vfychain = ["vfychain", "-d", f"sql:{leaves['nss']}", "-pp", "-u", "1", "-g", "leaf", "-m", method]
    code, out = _run(*vfychain, "-s", "failIfNoInfo", str(leaves["good.der"]))
    assert code == 0 and "Chain is good!" in out
    code, out = _run(*vfychain, "-s", "failIfNoInfo", str(leaves["revoked.der"]))
    assert code != 0 and "Chain is bad!" in out and "-8180" in out  # SEC_ERROR_REVOKED_CERTIFICATE


def test_openssl_verify_downloads_the_crl(server: LiveServer, leaves: dict[str, Path]) -> None:
    verify = ["openssl", "verify", "-CAfile", str(server.ca_file), "-crl_download", "-crl_check"]
    code, out = _run(*verify, str(leaves["good"]))
    assert code == 0 and f"{leaves['good']}: OK" in out
    code, out = _run(*verify, str(leaves["revoked"]))
    assert code != 0 and "certificate revoked" in out


@pytest.mark.skipif(shutil.which("ocsptool") is None, reason="needs gnutls-bin")
def test_gnutls_ocsptool_asks(server: LiveServer, leaves: dict[str, Path]) -> None:
    ask = ["ocsptool", "--ask", "--load-issuer", str(server.ca_file)]
    code, out = _run(*ask, "--load-cert", str(leaves["good"]))
    assert code == 0 and "Certificate Status: good" in out and "Verifying OCSP Response: Success" in out
    code, out = _run(*ask, "--load-cert", str(leaves["revoked"]))
    assert "Certificate Status: revoked" in out and "Verifying OCSP Response: Success" in out


@pytest.mark.parametrize("setting", ["POCKETCA_HTTP_PORT", "POCKETCA_PORT"])
def test_a_port_in_use_stops_serve_with_one_line(tmp_path: Path, setting: str) -> None:
    flag = setting.removeprefix("POCKETCA_").lower().replace("_", "-")
    busy = socket.create_server(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    env = {
        "POCKETCA_DATA_DIR": str(tmp_path / "data"),
        "POCKETCA_PORT": str(free_port()),
        "POCKETCA_HTTP_PORT": str(free_port()),
        setting: str(port),
        "PATH": "/usr/bin:/bin",
    }

    if url := database_url_for(tmp_path / "data"):
        env["POCKETCA_DATABASE_URL"] = url
    try:
        result = subprocess.run(
            [sys.executable, "-m", "service", "serve"], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        busy.close()
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"pocketca: cannot listen on 127.0.0.1:{port} (POCKETCA_HOST/--host, {setting}/--{flag}): "
        "Address already in use; stop what uses it or choose another port"
    ]


def test_http_port_0_turns_the_listener_off(tmp_path: Path) -> None:
    live = start_server(tmp_path / "data", extra_env={"POCKETCA_HTTP_PORT": "0"})
    try:
        assert "publication" not in live.log()
        with live.client() as https:
            assert https.get("/crl").status_code == 200
    finally:
        live.stop()


def certificate_der(server: LiveServer) -> bytes:
    pem = (server.data_dir / "ca.pem").read_bytes()
    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
