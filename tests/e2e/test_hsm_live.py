"""The CA key in a SoftHSM2 token (a real PKCS#11 module): init, serve, issue, renew, revoke, CRL and OCSP, checked
by openssl; one-line errors for a wrong PIN and a missing token; the PIN in no log, audit row or process list."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509

from tests.conftest import database_url_for, query, start_server
from tests.helpers import free_port

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "hsm-pin-738915-Kq"  # distinctive (letters too), so a search for it finds nothing else

pytestmark = pytest.mark.skipif(
    shutil.which("softhsm2-util") is None or not Path(MODULE).exists(), reason="softhsm2 is not installed"
)


def softhsm(tmp_path: Path, label: str = "pocketca") -> dict[str, str]:
    """A token of its own in a temp dir (SOFTHSM2_CONF), initialised with PIN."""
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {"SOFTHSM2_CONF": str(conf)}
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", "12345678"],
        env={**os.environ, **env}, check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return env


def uri(pin_file: Path, token: str = "pocketca") -> str:
    return f"pkcs11:token={token};object=ca?module-path={MODULE}&pin-source=file:{pin_file}"


def pocketca(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args], capture_output=True, text=True, env=env, timeout=60, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def run(*args: str) -> str:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)
    return f"rc={result.returncode}\n{result.stdout}{result.stderr}"


def test_ca_key_in_softhsm(tmp_path: Path) -> None:
    hsm = softhsm(tmp_path)
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    data, port = tmp_path / "data", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
    env.update(hsm)
    env.update({"POCKETCA_DATA_DIR": str(data), "POCKETCA_PUBLIC_URL": f"https://localhost:{port}"})
    if url := database_url_for(data):
        env["POCKETCA_DATABASE_URL"] = url

    # a missing token and a wrong PIN: one line each, nothing made
    wrong_pin = tmp_path / "wrong-pin"
    wrong_pin.write_text("000000\n")
    for key_uri, expected in (
        (uri(pin_file, token="nosuch"), "no PKCS#11 token 'nosuch'"),
        (uri(wrong_pin), "the PKCS#11 PIN for token 'pocketca' is wrong"),
        (f"pkcs11:token=pocketca?module-path=/nonexistent.so&pin-source=file:{pin_file}", "cannot load the PKCS#11"),
    ):
        refused = pocketca(env, "init", "--key-uri", key_uri)
        assert refused.returncode == 2, refused.stderr
        assert expected in refused.stderr and len(refused.stderr.splitlines()) == 1, refused.stderr
        assert not (data / "ca.pem").exists()

    made = pocketca(env, "init", "--key-uri", uri(pin_file))
    assert made.returncode == 0, made.stderr
    assert not (data / "ca.key").exists() and (data / "ca.key.pkcs11").exists()  # no key file: it is in the token
    ca = data / "ca.pem"
    assert run("openssl", "verify", "-CAfile", str(ca), str(ca)).endswith(": OK\n")  # self-signed by the token
    env_serve = {"POCKETCA_CA_KEY_URI": uri(pin_file), **hsm}
    # without the URI the data dir says where the key is and what to set
    no_uri = pocketca(env, "ca", "list")  # needs the CA key (token commands do not)
    assert no_uri.returncode == 2 and "set POCKETCA_CA_KEY_URI" in no_uri.stderr
    env.update(env_serve)
    server = start_server(data, port=port, extra_env=env_serve)
    try:
        leaf_dir = tmp_path / "a"
        issued = pocketca(env, "issue", "--cn", "alice", "--san", "alice.example", "--out-dir", str(leaf_dir))
        assert issued.returncode == 0, issued.stderr
        cert, key = leaf_dir / "cert.pem", leaf_dir / "key.pem"
        assert run("openssl", "verify", "-CAfile", str(ca), str(cert)).endswith(": OK\n")
        handshake = run("openssl", "s_client", "-connect", f"localhost:{port}", "-CAfile", str(ca))
        assert "Verify return code: 0 (ok)" in handshake  # the server certificate: signed by the token too

        renewed = pocketca(env, "renew", "--server", server.url, "--ca-file", str(ca), "--cert", str(cert), "--key",
                           str(key))  # fmt: skip
        assert renewed.returncode == 0 and "renewed:" in renewed.stdout, renewed.stderr
        assert run("openssl", "verify", "-CAfile", str(ca), str(cert)).endswith(": OK\n")
        serial = x509.load_pem_x509_certificate(cert.read_bytes()).serial_number
        revoked = pocketca(env, "revoke", "--server", server.url, "--ca-file", str(ca), "--token", server.admin_token,
                           format(serial, "x"), "--reason", "keyCompromise")  # fmt: skip
        assert revoked.returncode == 0, revoked.stderr

        crl = tmp_path / "crl.der"
        deadline = time.monotonic() + 10
        while True:
            run("curl", "-sS", "--cacert", str(ca), "-o", str(crl), f"{server.url}/crl")
            text = run("openssl", "crl", "-inform", "DER", "-in", str(crl), "-CAfile", str(ca), "-noout", "-text")
            if format(serial, "X") in text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "verify OK" in text and format(serial, "X") in text and "Key Compromise" in text
        answer = run("openssl", "ocsp", "-issuer", str(ca), "-cert", str(cert), "-url", f"{server.url}/ocsp",
                     "-CAfile", str(ca))  # fmt: skip
        assert "Response verify OK" in answer and f"{cert}: revoked" in answer
        answer = run("openssl", "ocsp", "-issuer", str(ca), "-serial", "0x1234", "-url", f"{server.url}/ocsp",
                     "-CAfile", str(ca), "-no_nonce")  # fmt: skip
        assert "Response verify OK" in answer and "0x1234: unknown" in answer

        processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
        assert PIN not in processes  # pin-source=file: the URI on a command line carries a path, never the PIN
    finally:
        assert server.stop() == 0
    assert PIN not in server.log()
    audit = query(data, "SELECT action, actor, detail FROM audit_events")
    assert audit and PIN not in repr(audit)
    for path in data.rglob("*"):
        if path.is_file():
            assert PIN.encode() not in path.read_bytes(), path
