"""An offline root, an issuing intermediate and a rotation, driven through the real CLI and a real `pocketca serve`,
checked by outside clients that trust only the root: openssl verify, curl and openssl s_client (mTLS),
openssl crl and openssl ocsp per issuer; then a backup and restore that keeps every issuer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.conftest import LiveServer, database_url_for, start_server
from tests.helpers import free_port

PASSPHRASE = "correct horse battery"


def _env(data: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
    env.update({"POCKETCA_DATA_DIR": str(data), "POCKETCA_PUBLIC_URL": f"https://localhost:{port}"})
    if url := database_url_for(data):
        env["POCKETCA_DATABASE_URL"] = url
    return env


def pocketca(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"pocketca {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def run(*args: str) -> str:
    result = subprocess.run(
        list(args), capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL
    )
    return f"rc={result.returncode}\n{result.stdout}{result.stderr}"


def _issuer_id(data: Path, env: dict[str, str]) -> dict[str, str]:
    """role -> issuer id, from `pocketca ca list`."""
    lines = pocketca(env, "ca", "list").stdout.splitlines()
    return {line.split()[1]: line.split()[0] for line in lines}


def _whoami(server: LiveServer, root: Path, cert: Path, key: Path) -> str:
    return run(
        "curl", "-sS", "--max-time", "20", "--cacert", str(root), "--cert", str(cert), "--key", str(key),
        f"{server.url}/whoami",
    )  # fmt: skip


def _ocsp(server: LiveServer, issuer: Path, cert: Path, root: Path) -> str:
    return run(
        "openssl", "ocsp", "-issuer", str(issuer), "-cert", str(cert), "-url", f"{server.url}/ocsp",
        "-CAfile", str(root), "-verify_other", str(issuer),
    )  # fmt: skip


def _crl_text(server: LiveServer, path: str, chain: Path, out: Path) -> str:
    run("curl", "-sS", "--max-time", "20", "--cacert", str(chain), "-o", str(out), f"{server.url}{path}")
    return run("openssl", "crl", "-inform", "DER", "-in", str(out), "-CAfile", str(chain), "-noout", "-text")


def test_offline_root_intermediate_rotation_and_backup(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    env = _env(data, port)
    secret = tmp_path / "root-passphrase"
    secret.write_text(PASSPHRASE + "\n")
    root_file = tmp_path / "offline" / "root.pem"
    root_file.parent.mkdir()

    # no passphrase and no terminal: one line, nothing made
    refused = pocketca(env, "init", "--intermediate", "--root-out", str(root_file), check=False)
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1
    assert "--root-passphrase-file" in refused.stderr and not root_file.exists() and not (data / "ca.key").exists()

    made = pocketca(
        env, "init", "--intermediate", "--root-out", str(root_file), "--root-passphrase-file", str(secret),
        "--permitted-dns", "example.com", "--permitted-dns", "localhost",
        "--permitted-ip", "127.0.0.0/8", "--permitted-ip", "::1/128", "--excluded-dns", "secret.example.com",
    )  # fmt: skip
    assert "keep it offline" in made.stdout
    # the root key is only in the root file, encrypted; the data dir has the root's certificate, never its key
    root_pem = root_file.read_bytes()
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in root_pem and b"BEGIN PRIVATE KEY" not in root_pem
    assert root_file.stat().st_mode & 0o077 == 0
    root = tmp_path / "root-ca.pem"  # what a client that trusts only the root is given
    root.write_bytes(x509.load_pem_x509_certificate(root_pem).public_bytes(Encoding.PEM))
    assert (data / "chain.pem").read_bytes() == root.read_bytes()
    text = run("openssl", "x509", "-in", str(data / "ca.pem"), "-noout", "-text")
    assert "CA:TRUE, pathlen:0" in text and "Permitted:" in text and "DNS:example.com" in text
    first_ca = tmp_path / "ca1.pem"
    first_ca.write_bytes((data / "ca.pem").read_bytes())

    server = start_server(data, port=port)
    try:
        # GET /ca: intermediate then root; TLS sends the intermediate (openssl s_client, root-only trust)
        chain = run("curl", "-sS", "--cacert", str(root), f"{server.url}/ca")
        assert chain.count("BEGIN CERTIFICATE") == 2
        handshake = run("openssl", "s_client", "-connect", f"localhost:{port}", "-CAfile", str(root))
        assert "Verify return code: 0 (ok)" in handshake and "i:CN = pocketca issuing CA 1" in handshake

        pocketca(env, "issue", "--cn", "alice.example.com", "--out-dir", str(tmp_path / "a"))
        pocketca(env, "issue", "--cn", "carol.example.com", "--out-dir", str(tmp_path / "c"))
        alice, alice_key = tmp_path / "a" / "cert.pem", tmp_path / "a" / "key.pem"
        verified = run("openssl", "verify", "-CAfile", str(root), "-untrusted", str(first_ca), str(alice))
        assert verified.endswith(": OK\n"), verified
        unchained = run("openssl", "verify", "-CAfile", str(root), str(alice))  # negative control: no intermediate
        assert "unable to get local issuer certificate" in unchained
        who = _whoami(server, root, alice, alice_key)
        assert '"issuer":"CN=pocketca issuing CA 1"' in who, who

        # name constraints: refused before signing, one line
        outside = pocketca(env, "issue", "--cn", "bob.other.org", "--out-dir", str(tmp_path / "x"), check=False)
        assert outside.returncode == 4 and "outside the permitted names" in outside.stderr  # refused: 4
        excluded = pocketca(env, "issue", "--cn", "secret.example.com", "--out-dir", str(tmp_path / "x"), check=False)
        assert excluded.returncode == 4 and "is excluded" in excluded.stderr

        # rotation with the offline root file; a wrong passphrase is refused in one line
        wrong = tmp_path / "wrong"
        wrong.write_text("not the passphrase\n")
        bad = pocketca(
            env, "ca", "rotate", "--root-file", str(root_file), "--root-passphrase-file", str(wrong), check=False
        )
        assert bad.returncode == 2 and "wrong passphrase" in bad.stderr
        rotated = pocketca(env, "ca", "rotate", "--root-file", str(root_file), "--root-passphrase-file", str(secret))
        assert "issuing CA now CN=pocketca issuing CA 2" in rotated.stdout and "restart" in rotated.stdout
    finally:
        assert server.stop() == 0

    ids = _issuer_id(data, env)
    old, new = ids["retired"], ids["current"]
    old_ca = data / "issuers" / old / "ca.pem"
    assert old_ca.read_bytes() == first_ca.read_bytes()
    server = start_server(data, port=port)
    try:
        handshake = run("openssl", "s_client", "-connect", f"localhost:{port}", "-CAfile", str(root))
        assert "Verify return code: 0 (ok)" in handshake and "i:CN = pocketca issuing CA 2" in handshake
        pocketca(env, "issue", "--cn", "dave.example.com", "--out-dir", str(tmp_path / "d"))
        dave, dave_key = tmp_path / "d" / "cert.pem", tmp_path / "d" / "key.pem"
        text = run("openssl", "x509", "-in", str(dave), "-noout", "-issuer", "-ext", "crlDistributionPoints")
        assert "issuer=CN = pocketca issuing CA 2" in text and f"/crl/{new}" in text
        text = run("openssl", "x509", "-in", str(alice), "-noout", "-ext", "crlDistributionPoints")
        assert f"/crl/{old}" in text
        for leaf, issuer in ((alice, old_ca), (dave, data / "ca.pem")):
            verified = run("openssl", "verify", "-CAfile", str(root), "-untrusted", str(issuer), str(leaf))
            assert verified.endswith(": OK\n"), verified

        # mTLS with a leaf of each issuer, trusting only the root; /whoami names each one's issuer
        assert '"issuer":"CN=pocketca issuing CA 1"' in _whoami(server, root, alice, alice_key)
        assert '"issuer":"CN=pocketca issuing CA 2"' in _whoami(server, root, dave, dave_key)

        # renewal across the switch: carol (issuer 1) renews over mTLS and gets a certificate from issuer 2
        carol, carol_key = tmp_path / "c" / "cert.pem", tmp_path / "c" / "key.pem"
        renewed = pocketca(
            env, "renew", "--server", server.url, "--ca-file", str(root), "--cert", str(carol), "--key", str(carol_key)
        )
        assert "renewed:" in renewed.stdout
        assert "issuer=CN = pocketca issuing CA 2" in run("openssl", "x509", "-in", str(carol), "-noout", "-issuer")
        assert '"issuer":"CN=pocketca issuing CA 2"' in _whoami(server, root, carol, carol_key)

        # revoking an old-issuer certificate shows in that issuer's CRL and OCSP, not the new one's
        alice_serial = x509.load_pem_x509_certificate(alice.read_bytes()).serial_number
        revoked = pocketca(env, "revoke", "--server", server.url, "--ca-file", str(root), "--token",
                           server.admin_token, format(alice_serial, "x"), "--reason", "keyCompromise")  # fmt: skip
        assert "revoked" in revoked.stdout
        chain1, chain2 = tmp_path / "chain1.pem", tmp_path / "chain2.pem"
        chain1.write_bytes(old_ca.read_bytes() + root.read_bytes())
        chain2.write_bytes((data / "ca.pem").read_bytes() + root.read_bytes())
        serial_hex = format(alice_serial, "X")
        deadline = time.monotonic() + 10
        while True:
            old_crl = _crl_text(server, f"/crl/{old}", chain1, tmp_path / "old.crl")
            if serial_hex in old_crl or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "verify OK" in old_crl and "Issuer: CN = pocketca issuing CA 1" in old_crl and serial_hex in old_crl
        new_crl = _crl_text(server, f"/crl/{new}", chain2, tmp_path / "new.crl")
        assert "verify OK" in new_crl and "Issuer: CN = pocketca issuing CA 2" in new_crl and serial_hex not in new_crl
        current = _crl_text(server, "/crl", chain2, tmp_path / "current.crl")
        assert "Issuer: CN = pocketca issuing CA 2" in current
        answer = _ocsp(server, old_ca, alice, root)
        assert "Response verify OK" in answer and f"{alice}: revoked" in answer and "keyCompromise" in answer
        answer = _ocsp(server, data / "ca.pem", dave, root)
        assert "Response verify OK" in answer and f"{dave}: good" in answer
        asked_new = run(  # alice's serial asked of the new issuer: not one of its certificates
            "openssl", "ocsp", "-issuer", str(data / "ca.pem"), "-serial", hex(alice_serial), "-url",
            f"{server.url}/ocsp", "-CAfile", str(root), "-verify_other", str(data / "ca.pem"),
        )  # fmt: skip
        assert "Response verify OK" in asked_new and f"{hex(alice_serial)}: unknown" in asked_new
        assert "403" in run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", str(root),
                            "--cert", str(alice), "--key", str(alice_key), f"{server.url}/whoami")  # fmt: skip
        missing = run("curl", "-sS", "--cacert", str(root), f"{server.url}/crl/0000000000000000")
        assert '"status":404' in missing
    finally:
        assert server.stop() == 0

    if database_url_for(data) is not None:
        return  # backup/restore is SQLite's (PostgreSQL: pg_dump); the rest ran on both
    archive = tmp_path / "backup.tar.gz"
    pocketca(env, "backup", str(archive))
    restored = tmp_path / "restored"
    renv = _env(restored, port)
    pocketca(renv, "restore", str(archive))
    assert (restored / "issuers" / old / "ca.key").exists() and (restored / "chain.pem").exists()
    assert _issuer_id(restored, renv) == {"current": new, "retired": old, "root": ids["root"]}
    root_crl = f"root-crls/{ids['root']}.crl"  # the root's CRL: the root keeps no other record of it
    assert (restored / root_crl).read_bytes() == (data / root_crl).read_bytes()
    server = start_server(restored, port=port)
    try:
        old_crl = _crl_text(server, f"/crl/{old}", chain1, tmp_path / "restored.crl")
        assert "verify OK" in old_crl and serial_hex in old_crl
        answer = _ocsp(server, old_ca, alice, root)
        assert "Response verify OK" in answer and f"{alice}: revoked" in answer
    finally:
        assert server.stop() == 0


def test_rotation_to_an_external_openssl_root(tmp_path: Path) -> None:
    """`init --import-key/--import-cert/--import-chain` adopts an intermediate an openssl root signed; the
    rotation is a CSR for that root (step 1) and the certificate it signs (step 2)."""
    work = tmp_path / "corp"
    work.mkdir()
    ext = work / "ca.ext"
    ext.write_text("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")

    def sh(*args: str) -> None:
        result = subprocess.run(list(args), capture_output=True, text=True, cwd=work, timeout=30, check=False)
        assert result.returncode == 0, result.stderr

    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
       "root.key", "-out", "root.pem", "-subj", "/CN=Corp Root", "-days", "3650")  # fmt: skip
    sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "int.key",
       "-out", "int.csr", "-subj", "/CN=Corp Issuing 1")  # fmt: skip
    sh("openssl", "x509", "-req", "-in", "int.csr", "-CA", "root.pem", "-CAkey", "root.key", "-out", "int.pem",
       "-days", "365", "-extfile", "ca.ext")  # fmt: skip
    data, port = tmp_path / "data", free_port()
    env = _env(data, port)
    wrong_chain = pocketca(env, "init", "--import-key", str(work / "int.key"), "--import-cert", str(work / "int.pem"),
                           "--import-chain", str(work / "int.pem"), check=False)  # fmt: skip
    assert wrong_chain.returncode == 2 and "is not signed by" in wrong_chain.stderr
    pocketca(env, "init", "--import-key", str(work / "int.key"), "--import-cert", str(work / "int.pem"),
             "--import-chain", str(work / "root.pem"))  # fmt: skip
    step1 = pocketca(env, "ca", "rotate", "--csr-out", str(work / "next.csr"))
    assert "--import-cert" in step1.stdout
    pending_key = (data / "pending" / "ca.key").read_bytes()
    again = pocketca(env, "ca", "rotate", "--csr-out", str(work / "other.csr"), check=False)  # issue 22
    assert again.returncode == 2 and "already pending" in again.stderr, again.stderr
    assert (data / "pending" / "ca.key").read_bytes() == pending_key and not (work / "other.csr").exists()
    sh("openssl", "x509", "-req", "-in", "next.csr", "-CA", "root.pem", "-CAkey", "root.key", "-out", "next.pem",
       "-days", "365", "-extfile", "ca.ext")  # fmt: skip
    pocketca(env, "ca", "rotate", "--import-cert", str(work / "next.pem"), "--import-chain", str(work / "root.pem"))
    server = start_server(data, port=port)
    try:
        pocketca(env, "issue", "--cn", "erin", "--out-dir", str(tmp_path / "e"))
        leaf = tmp_path / "e" / "cert.pem"
        verified = run("openssl", "verify", "-CAfile", str(work / "root.pem"), "-untrusted", str(work / "next.pem"),
                       str(leaf))  # fmt: skip
        assert verified.endswith(": OK\n"), verified
        who = _whoami(server, work / "root.pem", leaf, tmp_path / "e" / "key.pem")
        assert '"issuer":"CN=Corp Issuing 2"' in who
        # another intermediate of the same corporate root: its clients are not ours, refused in the handshake
        (work / "leaf.ext").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
        sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
           "other.key", "-out", "other.csr", "-subj", "/CN=Corp Other")  # fmt: skip
        sh("openssl", "x509", "-req", "-in", "other.csr", "-CA", "root.pem", "-CAkey", "root.key", "-out",
           "other.pem", "-days", "30", "-extfile", "ca.ext")  # fmt: skip
        sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
           "mallory.key", "-out", "mallory.csr", "-subj", "/CN=erin")  # fmt: skip
        sh("openssl", "x509", "-req", "-in", "mallory.csr", "-CA", "other.pem", "-CAkey", "other.key", "-out",
           "mallory.pem", "-days", "30", "-extfile", "leaf.ext")  # fmt: skip
        (work / "mallory-chain.pem").write_bytes(
            (work / "mallory.pem").read_bytes() + (work / "other.pem").read_bytes()
        )
        refused = _whoami(server, work / "root.pem", work / "mallory-chain.pem", work / "mallory.key")
        assert not refused.startswith("rc=0\n") and '"cn"' not in refused, refused  # TLS 1.3: the server hangs up
    finally:
        assert server.stop() == 0
