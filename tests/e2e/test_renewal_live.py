"""Renewal against a real server: a server-profile certificate (no clientAuth, so no mTLS) renewed by
`pocketca renew` with a renewal token and kept renewed by `--daemon`; the service's own TLS certificate
re-issued and picked up while it runs."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key

from service.authority import LocalCaller, build_renewal_token
from service.ca.keys import dump_private_key
from service.renewer import renewal_due
from tests.conftest import LiveServer, authority_at, make_settings, start_server
from tests.helpers import csr_pem, p256


def _cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
    result = subprocess.run(
        [sys.executable, "-m", "service", *argv], capture_output=True, text=True, timeout=timeout, env=env
    )
    shown = " ".join("pca_…" if arg.startswith("pca_") else arg for arg in argv)  # no token in the test's output
    print(f"$ pocketca {shown}\n{result.stdout}{result.stderr}(exit {result.returncode})")
    return result


def _serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def _enroll_server_cert(server: LiveServer, out: Path, cn: str, *extra: str) -> tuple[Path, Path]:
    common = ["--server", server.url, "--ca-file", str(server.ca_file)]
    enrolled = _cli("enroll", *common, "--token", server.admin_token, "--cn", cn, "--san", cn, "--profile", "server",
                    "--out-dir", str(out), *extra)  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    return out / "cert.pem", out / "key.pem"


def _wait(predicate: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_renew_a_server_certificate_with_a_renewal_token(live_server: LiveServer, tmp_path: Path) -> None:
    cert, key = _enroll_server_cert(live_server, tmp_path, "web.internal")
    first, old_key = _serial(cert), key.read_bytes()
    common = ["--server", live_server.url, "--ca-file", str(live_server.ca_file)]
    renewed = _cli("renew", *common, "--cert", str(cert), "--key", str(key), "--exec", f"touch {tmp_path}/hook")
    assert renewed.returncode == 0, renewed.stderr
    assert renewed.stdout.startswith(f"renewed: {format(_serial(cert), 'x')} valid until ")
    assert _serial(cert) != first and key.read_bytes() != old_key and (tmp_path / "hook").exists()
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    )
    with live_server.client(headers={"Authorization": f"Bearer {live_server.admin_token}"}) as http:
        audit = http.get("/audit", params={"limit": 20}).json()["items"]
        assert any(e["action"] == "certificate.renew" and e["actor"] == f"cert:{first:x}" for e in audit)
        # a revoked certificate cannot renew itself: one line, the server's refusal, nothing written
        assert http.post(f"/certs/{_serial(cert):x}/revoke", json={"reason": "superseded"}).status_code == 200
    before = cert.read_bytes()
    refused = _cli("renew", *common, "--cert", str(cert), "--key", str(key))
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [
        f"pocketca: 403 Certificate revoked: certificate {_serial(cert):x} has been revoked"
    ]
    assert cert.read_bytes() == before


def test_a_renewal_token_is_good_once_across_workers(tmp_path: Path) -> None:
    """The same token on six connections at once, to two workers: one certificate, five 401s (the jti is spent
    in the database, not in a worker's memory); and a token addressed to another server is refused."""
    server = start_server(tmp_path / "data", workers=2)
    try:
        cert, key = _enroll_server_cert(server, tmp_path / "svc", "db.internal")
        certificate = x509.load_pem_x509_certificate(cert.read_bytes())
        holder_key = load_pem_private_key(key.read_bytes(), None)
        now = dt.datetime.now(dt.UTC)
        token = build_renewal_token(holder_key, certificate, audience=f"{server.url}/csr", now=now, jti="once")
        csr = csr_pem(p256(), "db.internal", ["db.internal"]).decode()

        def attempt(_: int) -> tuple[int, str]:
            with server.client(headers={"Authorization": f"Bearer {token}"}) as http:
                response = http.post("/csr", json={"csr": csr})
                return response.status_code, response.json().get("detail", "")

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(attempt, range(6)))
        assert sorted(status for status, _ in answers) == [201, 401, 401, 401, 401, 401], answers
        assert all("used already" in detail for status, detail in answers if status == 401)
        elsewhere = build_renewal_token(
            holder_key, certificate, audience="https://other.example:8443/csr", now=now, jti="elsewhere"
        )
        with server.client(headers={"Authorization": f"Bearer {elsewhere}"}) as http:
            response = http.post("/csr", json={"csr": csr})
        assert response.status_code == 401 and f"{server.url}/csr" in response.json()["detail"]
    finally:
        server.stop()


def test_renew_picks_mtls_for_a_client_certificate(live_server: LiveServer, tmp_path: Path) -> None:
    """The client profile renews over mTLS, as before: the audit names the TLS identity, and no token is made."""
    common = ["--server", live_server.url, "--ca-file", str(live_server.ca_file)]
    assert _cli("enroll", *common, "--token", live_server.admin_token, "--cn", "build-7", "--out-dir",
                str(tmp_path)).returncode == 0  # fmt: skip
    first = _serial(tmp_path / "cert.pem")
    renewed = _cli("renew", *common, "--cert", str(tmp_path / "cert.pem"), "--key", str(tmp_path / "key.pem"))
    assert renewed.returncode == 0, renewed.stderr
    assert _serial(tmp_path / "cert.pem") != first


def test_daemon_keeps_a_short_lived_certificate_renewed(tmp_path: Path) -> None:
    """Renews each time the certificate is due, runs --exec after each change, rides out a server that is down,
    and stops cleanly on SIGTERM. Due here: a 1-day certificate 'expiring within 86396 s', about 4 s after issue."""
    data = tmp_path / "data"
    server = start_server(data)
    port = server.port
    cert, key = _enroll_server_cert(server, tmp_path / "svc", "svc.internal", "--validity-days", "1")
    hook = tmp_path / "hook.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
    argv = ["renew", "--daemon", "--server", server.url, "--ca-file", str(server.ca_file), "--cert", str(cert),
            "--key", str(key), "--validity-days", "1", "--if-expires-within", "86396s",
            "--exec", f"echo changed >> {hook}"]  # fmt: skip
    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "service", *argv], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    serials = [_serial(cert)]
    try:

        def changes() -> int:
            return len(hook.read_text().splitlines()) if hook.exists() else 0

        assert _wait(lambda: changes() >= 2, timeout=40), log.read_text()
        serials.append(_serial(cert))
        server.stop()  # the server goes away for a while
        assert _wait(lambda: "cannot reach the server" in log.read_text(), timeout=30), log.read_text()
        down_at = changes()
        time.sleep(3)
        assert changes() == down_at  # nothing written while the server is down
        server = start_server(data, port=port)
        assert _wait(lambda: changes() > down_at, timeout=60), log.read_text()
        serials.append(_serial(cert))
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        server.stop()
    output = log.read_text()
    print(output)
    assert len(set(serials)) == 3
    assert "next try in 1 s" in output and "next try in 2 s" in output  # the backoff doubles
    assert output.rstrip().endswith("pocketca renew --daemon: stopped")
    assert "Traceback" not in output
    # the files on disk are a matching pair
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    assert load_pem_private_key(key.read_bytes(), None).public_key() == leaf.public_key()


def test_daemon_renews_at_two_thirds_of_the_lifetime(live_server: LiveServer, tmp_path: Path) -> None:
    """A 90-day certificate issued 61 days ago is past two thirds: renewed at once; the new one is not due."""
    settings = make_settings(live_server.data_dir)
    past = authority_at(settings, dt.datetime.now(dt.UTC) - dt.timedelta(days=61))
    try:
        new_key = ec.generate_private_key(ec.SECP256R1())
        issued = past.issue_for_key(
            new_key.public_key(), cn="old.internal", sans=["old.internal"], profile="server",
            validity_days=90, caller=LocalCaller("test"),
        )  # fmt: skip
    finally:
        past.close()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(issued.certificate.public_bytes(Encoding.PEM))
    key.write_bytes(dump_private_key(new_key))
    assert renewal_due(issued.certificate, 0.0) < dt.datetime.now(dt.UTC)
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "service", "renew", "--daemon", "--server", live_server.url, "--ca-file",
         str(live_server.ca_file), "--cert", str(cert), "--key", str(key)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )  # fmt: skip
    try:
        assert _wait(lambda: _serial(cert) != issued.certificate.serial_number, timeout=30)
        time.sleep(1)
        renewed = x509.load_pem_x509_certificate(cert.read_bytes())
        assert renewal_due(renewed, 1.0) > dt.datetime.now(dt.UTC) + dt.timedelta(days=50)
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    print(output)
    assert daemon.returncode == 0
    assert output.count("renewed: ") == 1  # once, then it waits


def test_renewal_due_is_two_thirds_less_jitter() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    name = x509.Name([])
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
    builder = builder.serial_number(1).not_valid_before(start).not_valid_after(start + dt.timedelta(days=90))
    certificate = builder.sign(key, hashes.SHA256())
    assert renewal_due(certificate, 0.0) == start + dt.timedelta(days=60)
    assert renewal_due(certificate, 1.0) == start + dt.timedelta(days=60) - dt.timedelta(days=4.5)
    assert renewal_due(certificate, 0.5) == start + dt.timedelta(days=60) - dt.timedelta(days=2.25)


def _presented_serial(port: int, ca_file: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_the_service_certificate_is_reissued_while_it_runs(tmp_path: Path) -> None:
    """Every worker: a server certificate past two thirds of its life (put in place by hand here) is loaded into
    the live TLS context, then re-issued by the service itself; new connections get the new one, no restart."""
    data = tmp_path / "data"
    server = start_server(data, workers=2)
    try:
        original = _presented_serial(server.port, server.ca_file)
        settings = make_settings(data)
        past = authority_at(settings, dt.datetime.now(dt.UTC) - dt.timedelta(days=61))
        try:
            key = ec.generate_private_key(ec.SECP256R1())
            aged = past.issue_for_key(
                key.public_key(), cn="localhost", sans=["localhost", "127.0.0.1", "::1"], profile="server",
                validity_days=90, caller=LocalCaller("test"),
            )  # fmt: skip
        finally:
            past.close()
        # what `serve` would have written 61 days ago (key first, as it writes)
        (data / "server.key").write_bytes(dump_private_key(key))
        (data / "server.pem").write_bytes(aged.certificate.public_bytes(Encoding.PEM) + server.ca_file.read_bytes())

        def fresh() -> bool:
            seen = {_presented_serial(server.port, server.ca_file) for _ in range(8)}
            return len(seen) == 1 and seen.isdisjoint({original, aged.certificate.serial_number})

        assert _wait(fresh, timeout=40), server.log()
        current = x509.load_pem_x509_certificate((data / "server.pem").read_bytes())
        # each of the two workers loads it into its own context, once; each looks every second, and the eight
        # connections above may all have reached the one that looked first, so wait for both before asking again
        line = f"server certificate reloaded: serial {current.serial_number:x},"
        assert _wait(lambda: server.log().count(line) == 2, timeout=10), server.log()
        assert _presented_serial(server.port, server.ca_file) == current.serial_number
        assert current.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=89)
        with server.client() as https:
            assert https.get("/healthz").status_code == 200
        assert "server certificate re-issued" in server.log()
        time.sleep(1.5)  # another look by each worker: still once each
        assert server.log().count(line) == 2
    finally:
        server.stop()
