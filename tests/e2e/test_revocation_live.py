"""Revocation against a real server: `openssl ocsp` as the client, and the CRL refreshed off the request path."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from cryptography import x509

from tests.conftest import LiveServer, start_server
from tests.helpers import csr_pem, key_pem, p256


def _issue(server: LiveServer, directory: Path, cn: str) -> tuple[Path, str]:
    key = p256()
    with server.client(headers={"Authorization": f"Bearer {server.admin_token}"}) as http:
        response = http.post("/csr", json={"csr": csr_pem(key, cn).decode()})
    assert response.status_code == 201, response.text
    path = directory / f"{cn}.pem"
    path.write_text(response.json()["certificate"])
    (directory / f"{cn}.key").write_bytes(key_pem(key))
    return path, response.json()["serial"]


def _revoke(server: LiveServer, serial: str, reason: str) -> None:
    with server.client(headers={"Authorization": f"Bearer {server.admin_token}"}) as http:
        assert http.post(f"/certs/{serial}/revoke", json={"reason": reason}).status_code == 200


def _openssl_ocsp(server: LiveServer, *target: str) -> str:
    result = subprocess.run(
        [
            "openssl",
            "ocsp",
            "-issuer",
            str(server.ca_file),
            *target,
            "-url",
            f"{server.url}/ocsp",
            "-CAfile",
            str(server.ca_file),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout + result.stderr


def test_openssl_ocsp_good_revoked_unknown(live_server: LiveServer, tmp_path: Path) -> None:
    cert, serial = _issue(live_server, tmp_path, "ocsp-alice")
    out = _openssl_ocsp(live_server, "-cert", str(cert))
    assert "Response verify OK" in out and f"{cert}: good" in out
    _revoke(live_server, serial, "keyCompromise")
    out = _openssl_ocsp(live_server, "-cert", str(cert))
    assert "Response verify OK" in out and f"{cert}: revoked" in out
    assert "Reason: keyCompromise" in out and "Revocation Time:" in out
    out = _openssl_ocsp(live_server, "-serial", "0x1234abcd")
    assert "Response verify OK" in out and "0x1234abcd: unknown" in out
    assert "Nonce" not in out or "WARNING" not in out  # openssl sends a nonce and checks ours echoes it


def test_issued_certificates_point_at_ocsp_and_crl(live_server: LiveServer, tmp_path: Path) -> None:
    cert, _ = _issue(live_server, tmp_path, "pointer")
    text = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-text"], capture_output=True, text=True
    ).stdout
    # the publication listener's plain-HTTP URL (POCKETCA_PUBLICATION_URL), not the HTTPS API's (issue 11)
    assert f"{live_server.http_url}/ocsp" in text and f"{live_server.http_url}/crl" in text
    assert f"{live_server.url}/ocsp" not in text


def _crl(server: LiveServer) -> x509.CertificateRevocationList:
    with server.client() as http:
        return x509.load_der_x509_crl(http.get("/crl").content)


def test_a_burst_of_revocations_costs_few_builds_and_numbers_only_grow(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", workers=2)
    try:
        serials = [_issue(server, tmp_path, f"burst-{i}")[1] for i in range(30)]
        before = _crl(server).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        builds_before = server.log().count("built CRL")
        for serial in serials:
            _revoke(server, serial, "superseded")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(_crl(server)) < 30:
            time.sleep(0.05)
        crl = _crl(server)
        assert len(crl) == 30
        after = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        builds = server.log().count("built CRL") - builds_before
        assert after > before
        assert 1 <= builds <= 10, builds  # 30 revocations, a handful of builds: bursts coalesce
        assert after - before == builds  # one number per build, none skipped or reused across the two workers
    finally:
        server.stop()
    restarted = start_server(tmp_path / "data")
    try:
        with restarted.client() as http:  # a restart never goes back in numbering
            first = x509.load_der_x509_crl(http.get("/crl").content)
        assert first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number >= after
    finally:
        restarted.stop()
