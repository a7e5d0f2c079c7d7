"""`pocketca serve` over its life: first start, restart, server-certificate renewal, an encrypted CA key,
two starts at once on one data dir, revocation seen by every worker, the access log, and SQLite under load.

Every test starts real `python -m service serve` processes (through `start_server` or subprocess) and
stops them in a `finally`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import socket
import sqlite3
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from service.authority import LocalCaller
from service.authority.callers import hash_secret
from service.ca.inspect import get_sans
from service.ca.keys import dump_private_key
from service.datadir.prepare import prepare
from service.datadir.server_cert import server_certificate_due
from service.db import migrate
from service.keys.files import write_private_file, write_public_file
from tests.conftest import LiveServer, authority_at, make_settings, start_server
from tests.helpers import csr_pem, free_port, key_pem, p256

SERVER_NAMES = ["localhost", "127.0.0.1", "::1"]
PRIVATE_FILES = ("ca.key", "server.key", "admin.token")


# --- helpers ------------------------------------------------------------------------------------------


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _split_token(token: str) -> tuple[str, str]:
    """`pca_<id>_<secret>`: the id is hex, the secret is urlsafe base64 (which may itself hold '_')."""
    assert token.startswith("pca_"), token
    token_id, _, secret = token.removeprefix("pca_").partition("_")
    assert token_id and secret, token
    return token_id, secret


def _issue(server: LiveServer, directory: Path, cn: str) -> tuple[Path, Path, str]:
    key = p256()
    with server.client(headers=_auth(server.admin_token)) as http:
        response = http.post("/csr", json={"csr": csr_pem(key, cn).decode()})
    assert response.status_code == 201, response.text
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{cn}.pem", directory / f"{cn}.key"
    cert_path.write_text(response.json()["certificate"])
    key_path.write_bytes(key_pem(key))
    key_path.chmod(0o600)
    return cert_path, key_path, response.json()["serial"]


def _whoami_status(server: LiveServer, cert: Path, key: Path) -> int:
    with server.client(cert, key) as http:
        return http.get("/whoami").status_code


def _leaf(data_dir: Path) -> x509.Certificate:
    """The first certificate of server.pem (leaf first, then the CA)."""
    return x509.load_pem_x509_certificates((data_dir / "server.pem").read_bytes())[0]


def _peer_certificate(host: str, port: int, server_hostname: str, ca_file: Path) -> bytes:
    """The DER certificate the server presents, after a handshake that verifies it for `server_hostname`."""
    context = ssl.create_default_context(cafile=str(ca_file))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as raw:
        raw.settimeout(10)
        raw.connect((host, port))
        with context.wrap_socket(raw, server_hostname=server_hostname) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def _serve_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
    env.update(
        {
            "POCKETCA_DATA_DIR": str(data_dir),
            "POCKETCA_PORT": str(port),
            "POCKETCA_PUBLIC_URL": f"https://localhost:{port}",
            "POCKETCA_HTTP_PORT": str(free_port()),
            **extra,
        }
    )
    return env


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@contextlib.contextmanager
def _db(data_dir: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(data_dir / "pocketca.db", timeout=10)
    try:
        yield connection
    finally:
        connection.close()


def _scalar(data_dir: Path, sql: str) -> object:
    with _db(data_dir) as connection:
        return connection.execute(sql).fetchone()[0]


@contextlib.contextmanager
def _running(data_dir: Path, **kwargs: object) -> Iterator[LiveServer]:
    server = start_server(data_dir, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


# --- 1. first start -----------------------------------------------------------------------------------


@pytest.mark.sqlite_only  # reads pocketca.db itself
def test_first_start_makes_private_files_a_hashed_working_token_and_a_certificate_for_every_name(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with _running(data) as server:
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        for name in PRIVATE_FILES:
            assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name

        token = server.admin_token
        token_id, secret = _split_token(token)
        with server.client(headers=_auth(token)) as http:
            assert http.post("/csr", json={"csr": csr_pem(p256(), "first").decode()}).status_code == 201
        with server.client(headers=_auth(f"pca_{token_id}_{secret[::-1]}x")) as http:  # negative: wrong secret
            assert http.post("/csr", json={"csr": csr_pem(p256(), "nope").decode()}).status_code == 401

        stored = b"".join(p.read_bytes() for p in sorted(data.glob("pocketca.db*")) if p.is_file())
        assert hash_secret(secret).encode() in stored  # positive control: the search sees what is stored
        assert secret.encode() not in stored
        assert token.encode() not in stored

        leaf = _leaf(data)
        assert sorted(get_sans(leaf)) == sorted(SERVER_NAMES), get_sans(leaf)
        wire = leaf.public_bytes(Encoding.DER)
        for host in ("localhost", "127.0.0.1"):
            with server.client() as http:
                assert http.get(f"https://{host}:{server.port}/healthz").status_code == 200, host
        for name in SERVER_NAMES:  # the certificate verifies for each configured name
            assert _peer_certificate("127.0.0.1", server.port, name, server.ca_file) == wire
        with pytest.raises(ssl.SSLCertVerificationError):  # negative: a name it does not hold
            _peer_certificate("127.0.0.1", server.port, "other.example", server.ca_file)
        with pytest.raises(ssl.SSLCertVerificationError):
            _peer_certificate("127.0.0.1", server.port, "127.0.0.2", server.ca_file)


def _ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_server_certificate_verifies_over_ipv6_loopback(tmp_path: Path) -> None:
    if not _ipv6_loopback_works():
        pytest.skip("IPv6 loopback (::1) is not available here")
    data, port = tmp_path / "data", free_port()
    log_path = tmp_path / "serve-v6.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_serve_env(data, port, POCKETCA_HOST="::1"),
            cwd=tmp_path,
        )
    server = LiveServer(f"https://[::1]:{port}", port, data, process, log_path)
    try:

        def healthy() -> bool:
            assert process.poll() is None, server.log()
            if not server.ca_file.exists():
                return False
            try:
                with server.client() as http:
                    return http.get("/healthz").status_code == 200
            except (httpx.TransportError, OSError):
                return False

        assert _wait_for(healthy, timeout=30), server.log()
        with server.client() as http:  # https://[::1]:PORT, verified by httpx against our CA
            assert http.get("/ca").status_code == 200
        assert _peer_certificate("::1", port, "::1", server.ca_file) == _leaf(data).public_bytes(Encoding.DER)
        with pytest.raises(ssl.SSLCertVerificationError):
            _peer_certificate("::1", port, "::2", server.ca_file)
    finally:
        server.stop()


# --- 2. restart -----------------------------------------------------------------------------------------


@pytest.mark.sqlite_only  # reads pocketca.db itself
def test_restart_reuses_ca_token_and_server_certificate_and_does_not_print_the_token_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    try:
        token = server.admin_token
        cert, key, _ = _issue(server, tmp_path / "client", "before-restart")
        assert _whoami_status(server, cert, key) == 200
    finally:
        server.stop()
    assert server.process.returncode is not None  # its exit code is checked in test_a_signal_stops_serve_cleanly
    first_log = server.log()
    assert first_log.count(token) == 1  # printed exactly once, on the first start
    before = {
        name: (data / name).read_bytes() for name in ("ca.pem", "ca.key", "admin.token", "server.pem", "server.key")
    }

    with _running(data) as again:
        after = {name: (data / name).read_bytes() for name in before}
        assert after == before
        assert again.admin_token == token
        with again.client(headers=_auth(token)) as http:
            assert http.post("/csr", json={"csr": csr_pem(p256(), "after-restart").decode()}).status_code == 201
        assert _whoami_status(again, cert, key) == 200
        assert _peer_certificate("127.0.0.1", again.port, "localhost", again.ca_file) == _leaf(data).public_bytes(
            Encoding.DER
        )
        second_log = again.log()
        assert token not in second_log
        assert _split_token(token)[1] not in second_log
        assert "Admin token" not in second_log
        assert _scalar(data, "select count(*) from tokens") == 1


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_serve_cleanly(tmp_path: Path, signum: signal.Signals, workers: int) -> None:
    """SIGTERM (systemd, docker stop) and SIGINT (Ctrl-C): exit code 0, the shutdown logged, no traceback."""
    server = start_server(tmp_path / "data", workers=workers)
    try:
        server.process.send_signal(signum)
        code = server.process.wait(timeout=20)
    finally:
        server.stop()
    log = server.log()
    outcome = {
        "exit code": code,
        "logged 'pocketca stopped'": "pocketca stopped" in log,
        "traceback": "Traceback" in log,
    }
    assert outcome == {"exit code": 0, "logged 'pocketca stopped'": True, "traceback": False}, log


# --- 3. server-certificate renewal ----------------------------------------------------------------------


def test_a_server_certificate_past_two_thirds_of_its_life_is_renewed_on_start_and_served(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = make_settings(data)
    prepare(settings)
    now = dt.datetime.now(dt.UTC)
    aged_authority = authority_at(settings, now - dt.timedelta(days=70))
    try:
        key = ec.generate_private_key(ec.SECP256R1())
        aged = aged_authority.issue_for_key(
            key.public_key(),
            cn=SERVER_NAMES[0],
            sans=SERVER_NAMES,
            profile="server",
            validity_days=90,
            caller=LocalCaller("serve"),
        )
        write_private_file(data / "server.key", dump_private_key(key))
        chain = [aged.certificate, *aged_authority.chain]
        write_public_file(data / "server.pem", b"".join(c.public_bytes(Encoding.PEM) for c in chain))
    finally:
        aged_authority.db.dispose()
    aged_der = aged.certificate.public_bytes(Encoding.DER)
    assert _leaf(data).public_bytes(Encoding.DER) == aged_der
    assert server_certificate_due(aged.certificate, SERVER_NAMES, now)
    aged_key = (data / "server.key").read_bytes()

    with _running(data) as server:
        renewed = _leaf(data)
        assert renewed.public_bytes(Encoding.DER) != aged_der
        assert renewed.not_valid_before_utc > aged.certificate.not_valid_before_utc
        assert renewed.not_valid_before_utc > now - dt.timedelta(days=1)
        assert not server_certificate_due(renewed, SERVER_NAMES, dt.datetime.now(dt.UTC))
        assert (data / "server.key").read_bytes() != aged_key
        assert stat.S_IMODE((data / "server.key").stat().st_mode) == 0o600
        on_the_wire = _peer_certificate("127.0.0.1", server.port, "localhost", server.ca_file)
        assert on_the_wire == renewed.public_bytes(Encoding.DER)
        assert on_the_wire != aged_der


# --- 4. an encrypted CA key -------------------------------------------------------------------------------


def test_passphrase_encrypts_the_ca_key_and_a_wrong_one_stops_serve_with_a_clear_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good, bad = "correct-horse-battery-staple-4711", "wrong-passphrase-0815"
    good_file, bad_file = tmp_path / "pass", tmp_path / "wrong"
    good_file.write_text(good + "\n")
    bad_file.write_text(bad + "\n")
    for path in (good_file, bad_file):
        path.chmod(0o600)

    with _running(data, workers=2, extra_env={"POCKETCA_CA_KEY_PASSPHRASE_FILE": str(good_file)}) as server:
        assert (data / "ca.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        encrypted_key = (data / "ca.key").read_bytes()
        assert good.encode() not in encrypted_key
        cert, key, _ = _issue(server, tmp_path / "client", "encrypted-ca")
        assert _whoami_status(server, cert, key) == 200
        with server.client() as http:
            assert http.get("/crl").status_code == 200  # signing with the decrypted key works in the workers
    assert server.process.returncode == 0

    for label, extra in (
        ("wrong passphrase", {"POCKETCA_CA_KEY_PASSPHRASE_FILE": str(bad_file)}),
        ("no passphrase", {}),
    ):
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "service", "serve"],
            env=_serve_env(data, free_port(), **extra),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
        elapsed = time.monotonic() - started
        output = result.stdout + result.stderr
        assert result.returncode != 0, (label, output)
        assert elapsed < 15, (label, elapsed)
        assert "passphrase" in result.stderr.lower(), (label, result.stderr)
        assert "Traceback" not in output, (label, output)
        assert good not in output and bad not in output, (label, output)
    assert (data / "ca.key").read_bytes() == encrypted_key  # the failed starts changed nothing


# --- 5. two starts at the same moment -------------------------------------------------------------------


@pytest.mark.sqlite_only  # reads pocketca.db itself
def test_two_serves_started_together_on_one_empty_data_dir_share_one_ca_and_one_token(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ports = [free_port(), free_port()]
    while ports[1] == ports[0]:
        ports[1] = free_port()
    servers: list[LiveServer] = []
    errors: list[BaseException] = []
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(start_server, data, port=port) for port in ports]
            for future in futures:
                try:
                    servers.append(future.result(timeout=60))
                except Exception as exc:  # both must be stopped even if one fails
                    errors.append(exc)
        assert not errors, errors
        a, b = servers

        with a.client() as http_a, b.client() as http_b:
            ca_a, ca_b = http_a.get("/ca"), http_b.get("/ca")
        assert ca_a.status_code == ca_b.status_code == 200
        assert ca_a.content == ca_b.content
        assert x509.load_pem_x509_certificates(ca_a.content)[0] == x509.load_pem_x509_certificate(
            (data / "ca.pem").read_bytes()
        )
        assert len(list(data.glob("ca.key*"))) == 1

        assert _scalar(data, "select count(*) from tokens") == 1
        assert _scalar(data, "select count(*) from tokens where scope = 'admin'") == 1
        head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
        with _db(data) as connection:
            versions = [row[0] for row in connection.execute("select version_num from alembic_version")]
        assert versions == [head]
        assert _scalar(data, "select count(*) from certificates where profile = 'server'") == 1
        announced = a.log().count("Admin token") + b.log().count("Admin token")
        assert announced == 1

        cert, key, _ = _issue(a, tmp_path / "client", "cross")
        assert _whoami_status(b, cert, key) == 200
        assert _whoami_status(a, cert, key) == 200
        with b.client() as http:
            assert http.get("/whoami").status_code == 401  # negative: no certificate
    finally:
        for server in servers:
            server.stop()


# --- 6. revocation reaches every worker ------------------------------------------------------------------


def _worker_pids(server: LiveServer) -> set[int]:
    return {int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", server.log())}


def _worker_children(pid: int) -> list[str]:
    """The workers: forked from `serve` (server._fork_workers), so they are its children with its command line."""
    result = subprocess.run(["pgrep", "-a", "-P", str(pid)], capture_output=True, text=True, timeout=10)
    return [line for line in result.stdout.splitlines() if "serve" in line]


def _local_port(response: httpx.Response) -> int:
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


def test_with_two_workers_a_revoked_certificate_is_refused_on_every_connection(tmp_path: Path) -> None:
    with _running(tmp_path / "data", workers=2) as server:
        assert _wait_for(lambda: len(_worker_pids(server)) == 2), server.log()
        assert len(_worker_children(server.process.pid)) == 2, _worker_children(server.process.pid)

        cert, key, serial = _issue(server, tmp_path / "client", "revoke-me")
        before = [_whoami_status(server, cert, key) for _ in range(20)]
        assert before == [200] * 20

        with server.client(cert, key) as kept:
            first = kept.get("/whoami")
            assert first.status_code == 200
            with server.client(headers=_auth(server.admin_token)) as admin:
                revoked = admin.post(f"/certs/{serial}/revoke", json={"reason": "keyCompromise"})
            assert revoked.status_code == 200, revoked.text
            second = kept.get("/whoami")
            assert _local_port(second) == _local_port(first)  # the same keep-alive connection
            assert second.status_code == 403, second.text

        after = [_whoami_status(server, cert, key) for _ in range(40)]
        assert after == [403] * 40, after

        other_cert, other_key, _ = _issue(server, tmp_path / "client", "still-fine")  # negative control
        assert [_whoami_status(server, other_cert, other_key) for _ in range(4)] == [200] * 4


# --- 7. the access log ------------------------------------------------------------------------------------


def _access_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if " pocketca.access " in line]


def test_the_log_has_one_line_per_request_naming_the_caller_and_no_secrets(tmp_path: Path) -> None:
    data = tmp_path / "data"
    prepared = prepare(make_settings(data))  # the token is made (and would be printed) here, not below
    assert prepared.admin_token is not None
    token = prepared.admin_token
    token_id, secret = _split_token(token)
    with _running(data) as server:
        cert, key, serial = _issue(server, tmp_path / "client", "logged")
        assert _whoami_status(server, cert, key) == 200
        with server.client(headers=_auth(token)) as http:
            assert http.post(f"/certs/{serial}/revoke", json={}).status_code == 200
        assert _whoami_status(server, cert, key) == 403
        bogus = f"pca_{token_id}_not-the-secret-{secret[:4]}zz"
        with server.client(headers=_auth(bogus)) as http:
            assert http.post("/csr", json={"csr": csr_pem(p256(), "x").decode()}).status_code == 401

        expected = [
            rf"POST /csr 201 caller=token:{token_id} ",
            rf"GET /whoami 200 caller=cert:{serial} ",
            rf"POST /certs/{serial}/revoke 200 caller=token:{token_id} ",
            rf"GET /whoami 403 caller=\S*cert:{serial} ",
            r"POST /csr 401 caller=",
        ]
        assert _wait_for(lambda: len([x for x in _access_lines(server.log()) if "/healthz" not in x]) >= 5)
        log = server.log()
    lines = [line for line in _access_lines(log) if "/healthz" not in line]
    assert len(lines) == 5, lines
    for pattern, line in zip(expected, lines, strict=True):
        assert re.search(pattern, line), (pattern, line)
    assert all(" caller=" in line for line in _access_lines(log))
    assert token not in log and secret not in log
    assert bogus not in log
    assert "PRIVATE KEY" not in log
    for name in ("ca.key", "server.key"):  # not even a line of a key's base64
        body = [x for x in (data / name).read_text().splitlines() if x and not x.startswith("-----")]
        assert not any(chunk in log for chunk in body), name


# --- 8. SQLite under two workers --------------------------------------------------------------------------


@pytest.mark.sqlite_only  # reads pocketca.db itself
def test_sqlite_is_wal_and_60_concurrent_issues_on_two_workers_all_succeed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with _running(data, workers=2) as server:
        with _db(data) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        servers_before = _scalar(data, "select count(*) from certificates")
        assert servers_before == 1  # the service's own TLS certificate

        csrs = [csr_pem(p256(), f"load-{i}").decode() for i in range(60)]
        chunks = [csrs[i::12] for i in range(12)]
        token = server.admin_token

        def post_all(chunk: list[str]) -> list[tuple[int, str]]:
            with server.client(headers=_auth(token)) as http:
                return [(r.status_code, r.text) for r in (http.post("/csr", json={"csr": c}) for c in chunk)]

        with ThreadPoolExecutor(max_workers=12) as pool:
            results = [item for chunk in pool.map(post_all, chunks, timeout=60) for item in chunk]
        log = server.log()

    assert len(results) == 60
    statuses = [status for status, _ in results]
    assert statuses == [201] * 60, [r for r in results if r[0] != 201][:3]
    assert not any("locked" in text.lower() for _, text in results)
    assert "database is locked" not in log
    serials = {json.loads(text)["serial"] for _, text in results}
    assert len(serials) == 60
    with _db(data) as connection:
        total, distinct = connection.execute("select count(*), count(distinct serial) from certificates").fetchone()
        stored = {row[0] for row in connection.execute("select serial from certificates")}
    assert total == distinct == statuses.count(201) + servers_before
    assert serials <= stored
