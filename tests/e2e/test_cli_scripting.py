"""The client commands as scripts use them: configuration from POCKETCA_SERVER/TOKEN/CA_FILE, --json documents,
`certs list` and `certs inspect`; and local `issue` writing the URLs `serve` uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID

from tests.conftest import LiveServer


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
    return subprocess.run(
        [sys.executable, "-m", "service", *argv],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**base, **(env or {})},
        timeout=120,
    )


def test_client_commands_from_the_environment_with_json(live_server: LiveServer, tmp_path: Path) -> None:
    env = {
        "POCKETCA_SERVER": live_server.url,
        "POCKETCA_TOKEN": live_server.admin_token,
        "POCKETCA_CA_FILE": str(live_server.ca_file),
    }
    out = tmp_path / "svc"
    enrolled = run("enroll", "--cn", "svc.example", "--san", "svc.example", "--out-dir", str(out), "--json", env=env)
    assert enrolled.returncode == 0, enrolled.stderr
    document = json.loads(enrolled.stdout)
    assert document["cn"] == "svc.example" and document["files"]["cert"] == str(out / "cert.pem")
    serial = document["serial"]

    listed = run("certs", "list", "--cn", "svc.example", "--status", "valid", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [item["serial"] for item in json.loads(listed.stdout)["items"]] == [serial]

    by_serial = json.loads(run("certs", "inspect", serial, "--json", env=env).stdout)
    assert by_serial["serial"] == serial and by_serial["status"] == "valid"
    by_file = json.loads(run("certs", "inspect", str(out / "cert.pem"), "--json").stdout)
    assert by_file["serial"] == serial and by_file["sans"] == ["svc.example"]
    der = tmp_path / "cert.der"
    der.write_bytes(x509.load_pem_x509_certificate((out / "cert.pem").read_bytes()).public_bytes(Encoding.DER))
    assert json.loads(run("certs", "inspect", str(der), "--json").stdout)["serial"] == serial
    text = run("certs", "inspect", str(der))
    assert text.returncode == 0 and "serial:" in text.stdout and serial in text.stdout

    renewed = run("renew", "--cert", str(out / "cert.pem"), "--key", str(out / "key.pem"), "--json", env=env)
    assert renewed.returncode == 0, renewed.stderr
    new_serial = json.loads(renewed.stdout)["serial"]
    revoked = run("revoke", new_serial, "--reason", "superseded", "--json", env=env)
    assert json.loads(revoked.stdout)["revocation_reason"] == "superseded"
    listed = json.loads(run("certs", "list", "--status", "revoked", "--json", env=env).stdout)
    assert new_serial in [item["serial"] for item in listed["items"]]


def test_local_issue_writes_the_urls_serve_uses(live_server: LiveServer, tmp_path: Path) -> None:
    recorded = json.loads((live_server.data_dir / "urls.json").read_text())
    assert recorded["public_url"] == live_server.url
    env = {"POCKETCA_DATA_DIR": str(live_server.data_dir)}
    if url := os.environ.get("POCKETCA_TEST_DATABASE_URL"):
        from tests.conftest import database_url_for

        env["POCKETCA_DATABASE_URL"] = database_url_for(live_server.data_dir) or url
    issued = run("issue", "--cn", "laptop", "--out-dir", str(tmp_path), "--json", env=env)
    assert issued.returncode == 0, issued.stderr
    certificate = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    points = certificate.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    crl_url = points[0].full_name[0].value
    base = recorded.get("publication_url", recorded["public_url"])
    assert crl_url.startswith(f"{base}/crl/") and "localhost:8443" not in crl_url  # /crl/<issuer id>
    assert json.loads(issued.stdout)["files"]["key"] == str(tmp_path / "key.pem")
