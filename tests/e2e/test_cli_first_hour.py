"""A newcomer's first hour with the client commands (issue 22), against a real server: no key or certificate is
replaced unasked, a refused command leaves no folder behind, what openssl prints is a fingerprint, a closed pipe
and a library's warning never show a traceback or a warning, and times read one way."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key, pkcs12

from service.ca.inspect import format_serial
from service.settings import Settings
from tests.conftest import LiveServer, database_url_for, query
from tests.helpers import free_port
from tests.test_cli_errors import POCKETCA, _where, one_line, run

RFC3339_Z = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b")


def _enrollment_token(server: LiveServer, cn: str, sans: list[str], **options: object) -> str:
    with server.client(headers={"Authorization": f"Bearer {server.admin_token}"}) as http:
        response = http.post("/tokens", json={"cn": cn, "sans": sans, **options})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def _enroll(
    server: LiveServer, token: str, cwd: Path, *extra: str, cn: str = "build-42"
) -> subprocess.CompletedProcess[str]:
    """The README's first example: no --out-dir, so the files go into the working directory."""
    common = ["--server", server.url, "--ca-file", str(server.ca_file), "--token", token]
    return run("enroll", *common, "--cn", cn, "--san", f"{cn}.ci.internal", *extra, cwd=cwd)


# --- 1. nothing is overwritten unasked ---------------------------------------------------------------------


def test_enroll_never_replaces_a_key_it_did_not_make(live_server: LiveServer, tmp_path: Path) -> None:
    precious = b"-----BEGIN PRIVATE KEY-----\nsomeone's key, not ours\n-----END PRIVATE KEY-----\n"
    (tmp_path / "key.pem").write_bytes(precious)
    token = _enrollment_token(live_server, "build-42", ["build-42.ci.internal"])

    line = one_line(_enroll(live_server, token, tmp_path), 2, "key.pem exists", "--out-dir", "--force")
    assert "Traceback" not in line
    assert (tmp_path / "key.pem").read_bytes() == precious
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pem"]  # nothing else written either

    # the refusal came before the server was asked: the one-use token still works, elsewhere
    assert _enroll(live_server, token, tmp_path, "--out-dir", str(tmp_path / "tls")).returncode == 0
    assert (tmp_path / "tls" / "cert.pem").exists() and (tmp_path / "key.pem").read_bytes() == precious

    # --force replaces the pair, the key with one that belongs to the new certificate
    again = _enrollment_token(live_server, "build-42", ["build-42.ci.internal"])
    assert _enroll(live_server, again, tmp_path, "--force").returncode == 0
    key = load_pem_private_key((tmp_path / "key.pem").read_bytes(), None)
    certificate = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    assert key.public_key() == certificate.public_key()


def test_issue_never_replaces_a_certificate_or_bundle(settings: Settings, prepared, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    count = "SELECT count(*) FROM certificates"
    before = query(settings.data_dir, count)
    out = tmp_path / "web"
    out.mkdir()
    (out / "cert.pem").write_text("an older certificate\n")
    issue = ["issue", *_where(settings), "--cn", "web", "--out-dir", str(out)]
    one_line(run(*issue), 2, str(out / "cert.pem"), "exists", "--force")
    assert (out / "cert.pem").read_text() == "an older certificate\n" and not (out / "key.pem").exists()

    bundle = tmp_path / "web.p12"
    bundle.write_bytes(b"an older bundle")
    password = tmp_path / "pw"
    password.write_text("correct horse battery\n")
    p12 = ["--p12", str(bundle), "--p12-password-file", str(password)]
    one_line(run(*issue, "--out-dir", str(tmp_path / "fresh"), *p12), 2, str(bundle), "--force")
    assert bundle.read_bytes() == b"an older bundle" and not (tmp_path / "fresh").exists()
    assert query(settings.data_dir, count) == before  # nothing was issued

    assert run(*issue, *p12, "--force").returncode == 0
    assert x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    assert bundle.read_bytes() != b"an older bundle"


def test_ca_bootstrap_and_backup_keep_what_is_there(live_server: LiveServer, tmp_path: Path) -> None:
    fingerprint = _openssl_fingerprint(live_server.ca_file, "-sha256")
    out = tmp_path / "ca.pem"
    bootstrap = ["ca", "bootstrap", "--server", live_server.url, "--fingerprint", fingerprint, "--out", str(out)]
    out.write_text("another CA's certificate\n")
    one_line(run(*bootstrap), 2, str(out), "exists", "--force")
    assert out.read_text() == "another CA's certificate\n"
    assert run(*bootstrap, "--force").returncode == 0
    assert out.read_bytes() == live_server.ca_file.read_bytes()
    assert run(*bootstrap).returncode == 0  # the same CA again: nothing to replace

    archive = tmp_path / "backup.tar.gz"
    archive.write_bytes(b"last week's backup")
    one_line(run("backup", "--data-dir", str(live_server.data_dir), str(archive)), 2, str(archive), "--force")
    assert archive.read_bytes() == b"last week's backup"


# --- 2. a failed enroll leaves nothing behind --------------------------------------------------------------


def test_a_refused_enroll_makes_no_folder(live_server: LiveServer, tmp_path: Path) -> None:
    token = _enrollment_token(live_server, "build-43", ["build-43.ci.internal"])
    assert _enroll(live_server, token, tmp_path, "--out-dir", "tls", cn="build-43").returncode == 0
    # the token is used up now
    one_line(_enroll(live_server, token, tmp_path, "--out-dir", "tls2", cn="build-43"), 4, "used up")
    # the policy refuses a name the token is not bound to
    other = _enrollment_token(live_server, "build-44", ["build-44.ci.internal"])
    one_line(_enroll(live_server, other, tmp_path, "--out-dir", "tls3/nested/deeper", cn="build-45"), 4)
    # the server cannot be reached
    unreachable = ["--server", f"https://127.0.0.1:{free_port()}", "--ca-file", str(live_server.ca_file)]
    result = run("enroll", *unreachable, "--token", other, "--cn", "build-44", "--out-dir", "tls4", cwd=tmp_path)
    one_line(result, 3, "cannot connect")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tls"]


# --- 8. the fingerprint as openssl prints it ---------------------------------------------------------------


def _openssl_fingerprint(ca_file: Path, digest: str) -> str:
    argv = ["openssl", "x509", "-in", str(ca_file), "-noout", "-fingerprint", digest]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def test_ca_bootstrap_takes_the_fingerprint_line_openssl_prints(live_server: LiveServer, tmp_path: Path) -> None:
    printed = _openssl_fingerprint(live_server.ca_file, "-sha256")
    assert re.fullmatch(r"(?i)sha256 fingerprint=([0-9A-F]{2}:){31}[0-9A-F]{2}", printed), printed
    out = tmp_path / "ca.pem"
    # the README's command, word for word: the fingerprint in "$(openssl ...)"
    script = (
        f"pocketca ca bootstrap --server {live_server.url} --out {out} "
        f'--fingerprint "$(openssl x509 -in {live_server.ca_file} -noout -fingerprint -sha256)"'
    )
    env = {**os.environ, "PATH": f"{Path(POCKETCA[0]).parent}:{os.environ['PATH']}"}
    env = {k: v for k, v in env.items() if not k.startswith("POCKETCA_")}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == live_server.ca_file.read_bytes()

    sha1 = _openssl_fingerprint(live_server.ca_file, "-sha1")
    result = run("ca", "bootstrap", "--server", live_server.url, "--fingerprint", sha1, "--out", str(tmp_path / "x"))
    one_line(result, 2, "SHA-1 fingerprint", "-sha256")


# --- 11. a closed pipe -------------------------------------------------------------------------------------


def _into_a_closed_pipe(*argv: str) -> subprocess.CompletedProcess[bytes]:
    """stdout is a pipe whose reader has gone (as `| head -3` once head has its lines): every write fails."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            [*POCKETCA, *argv], stdout=writer, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=60
        )
    finally:
        os.close(writer)


def test_a_closed_pipe_ends_every_command_quietly(live_server: LiveServer, tmp_path: Path) -> None:
    der = tmp_path / "cert.der"
    der.write_bytes(x509.load_pem_x509_certificate(live_server.ca_file.read_bytes()).public_bytes(Encoding.DER))
    client = ["--server", live_server.url, "--ca-file", str(live_server.ca_file), "--token", live_server.admin_token]
    for argv in (
        ["certs", "inspect", str(der)],  # the issue's `pocketca certs inspect cert.der | head -3`
        ["certs", "list", *client],
        ["token", "list", "--data-dir", str(live_server.data_dir), *_database(live_server)],
        ["openapi"],  # more than a pipe's buffer
    ):
        result = _into_a_closed_pipe(*argv)
        assert result.stderr == b"", (argv, result.stderr.decode())
        assert result.returncode == 141, argv  # 128 + SIGPIPE, as a shell reports `cat big | head -1`


def _database(server: LiveServer) -> list[str]:
    url = database_url_for(server.data_dir)
    return ["--database-url", url] if url else []


# --- 12. no library warning on the terminal ----------------------------------------------------------------


def test_a_ca_bundle_with_a_negative_serial_gives_no_warning(live_server: LiveServer, tmp_path: Path) -> None:
    """Older system bundles hold certificates with a negative serial; cryptography warns about each one."""
    negative = tmp_path / "negative.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(tmp_path / "negative.key"), "-subj", "/CN=negative serial", "-set_serial", "-5",
         "-days", "2", "-out", str(negative)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert (
        "serial=-05"
        in subprocess.run(
            ["openssl", "x509", "-in", str(negative), "-noout", "-serial"], capture_output=True, text=True
        ).stdout
    )
    common = ["certs", "list", "--server", live_server.url, "--token", live_server.admin_token]

    alone = tmp_path / "bundle-without-us.pem"
    alone.write_bytes(negative.read_bytes())
    result = run(*common, "--ca-file", str(alone))
    one_line(result, 3, "not trusted")
    assert result.stderr.count("\n") == 1 and "arning" not in result.stderr, result.stderr

    with_us = tmp_path / "bundle.pem"
    with_us.write_bytes(negative.read_bytes() + live_server.ca_file.read_bytes())
    result = run(*common, "--ca-file", str(with_us))
    assert result.returncode == 0 and result.stderr == "", result.stderr


# --- 13. one time style, the words a person expects, a password asked twice ---------------------------------


def test_every_time_the_cli_prints_reads_one_way(live_server: LiveServer, tmp_path: Path) -> None:
    token = _enrollment_token(live_server, "build-46", ["build-46.ci.internal"])
    client = ["--server", live_server.url, "--ca-file", str(live_server.ca_file)]
    enrolled = run(
        "enroll",
        *client,
        "--token",
        token,
        "--cn",
        "build-46",
        "--san",
        "build-46.ci.internal",
        "--out-dir",
        "tls",
        "--json",
        cwd=tmp_path,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    admin = ["--token", live_server.admin_token]
    local = ["--data-dir", str(live_server.data_dir), *_database(live_server)]
    outputs = {
        "enroll --json": enrolled.stdout,
        "certs list": run("certs", "list", *client, *admin, "--cn", "build-46").stdout,
        "certs list --json": run("certs", "list", *client, *admin, "--cn", "build-46", "--json").stdout,
        "certs inspect FILE": run("certs", "inspect", str(tmp_path / "tls" / "cert.pem")).stdout,
        "certs inspect SERIAL": run("certs", "inspect", *client, *admin, _serial(tmp_path / "tls" / "cert.pem")).stdout,
        "renew (not due)": run(
            "renew",
            *client,
            "--cert",
            str(tmp_path / "tls" / "cert.pem"),
            "--key",
            str(tmp_path / "tls" / "key.pem"),
            "--if-expires-within",
            "1d",
        ).stdout,
        "token create --json": run("token", "create", *local, "--scope", "read", "--ttl", "1h", "--json").stdout,
        "token list": run("token", "list", *local).stdout,
        "token list --json": run("token", "list", *local, "--json").stdout,
        "ca list": run("ca", "list", *local).stdout,
    }
    for name, out in outputs.items():
        assert RFC3339_Z.search(out), (name, out)
        assert "+00:00" not in out and " UTC" not in out, (name, out)
        assert not re.search(r"\d\d:\d\d:\d\d\.\d", out), (name, out)  # to the second, as X.509 times are
    listing = outputs["token list"].splitlines()
    assert listing[0].split()[:2] == ["ID", "KIND"]
    enrollment_rows = [row for row in listing if "build-46" in row]
    assert enrollment_rows and all(row.split()[1] == "enrollment" for row in enrollment_rows), listing


def _serial(path: Path) -> str:
    return format_serial(x509.load_pem_x509_certificate(path.read_bytes()).serial_number)


def _on_a_terminal(argv: list[str], answers: list[str], timeout: float = 60) -> tuple[int, str]:
    """Runs the command with a terminal of its own (getpass reads /dev/tty), answering each prompt in turn."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the pty
        env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
        env["POCKETCA_HTTP_PORT"] = "0"
        try:
            os.execve(POCKETCA[0], [*POCKETCA, *argv], env)
        finally:  # never back into the test run, in a copy of it
            os._exit(127)
    seen, since, pending, deadline = b"", b"", list(answers), time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child closed the terminal: it has exited
                break
            if not chunk:
                break
            seen, since = seen + chunk, since + chunk
            if pending and since.rstrip().endswith(b":"):  # a new prompt since the last answer
                os.write(fd, (pending.pop(0) + "\n").encode())
                since = b""
    finally:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:  # still waiting for something: the test fails below with what it saw
            os.kill(pid, 9)
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")


def test_issue_p12_asks_for_the_password_twice(settings: Settings, prepared, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    count = "SELECT count(*) FROM certificates"
    before = query(settings.data_dir, count)
    bundle = tmp_path / "alice.p12"
    issue = ["issue", *_where(settings), "--cn", "alice", "--out-dir", str(tmp_path / "a"), "--p12", str(bundle)]
    code, seen = _on_a_terminal(issue, ["correct horse battery", "correct horse staple"])
    assert code == 2, seen
    assert "PKCS#12 password:" in seen and "again:" in seen and "differ" in seen, seen
    assert not bundle.exists() and query(settings.data_dir, count) == before

    code, seen = _on_a_terminal(issue, ["correct horse battery", "correct horse battery"])
    assert code == 0, seen
    loaded = pkcs12.load_pkcs12(bundle.read_bytes(), b"correct horse battery")
    assert loaded.cert is not None and loaded.key is not None
