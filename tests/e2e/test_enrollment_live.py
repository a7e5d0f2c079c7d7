"""Enrollment and renewal the way pipelines and hosts do it, against a real server with two workers."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from service.cli import main
from tests.conftest import LiveServer, query, start_server
from tests.helpers import csr_pem, p256


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("w2") / "data", workers=2)
    yield server
    server.stop()


def _token(server: LiveServer, **body: object) -> str:
    with server.client(headers={"Authorization": f"Bearer {server.admin_token}"}) as http:
        response = http.post("/tokens", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def test_one_use_token_under_20_simultaneous_requests(two_workers: LiveServer) -> None:
    token = _token(two_workers, cn="deploy-1", sans=["deploy-1.internal"])
    csrs = [csr_pem(p256(), "deploy-1", ["deploy-1.internal"]).decode() for _ in range(20)]
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt(csr: str) -> None:
        with two_workers.client(headers={"Authorization": f"Bearer {token}"}) as http:
            http.get("/healthz")  # connect first, so the 20 POSTs leave together
            barrier.wait(timeout=30)
            status = http.post("/csr", json={"csr": csr}).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=attempt, args=(csr,)) for csr in csrs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [201] + [401] * 19
    assert query(two_workers.data_dir, "select count(*) from certificates where cn = 'deploy-1'") == [(1,)]
    assert query(two_workers.data_dir, "select uses_left from tokens where cn = 'deploy-1'") == [(0,)]


def test_pipeline_enrolls_with_one_line_and_host_renews_from_a_timer(
    two_workers: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = _token(two_workers, cn="web-3", sans=["web-3.internal"], profile="peer", ttl_seconds=600)
    out = tmp_path / "tls"
    common = ["--server", two_workers.url, "--ca-file", str(two_workers.ca_file)]
    argv = ["enroll", *common, "--token", token, "--cn", "web-3", "--san", "web-3.internal", "--out-dir", str(out)]
    assert main(argv) == 0
    cert, key = out / "cert.pem", out / "key.pem"
    first = cert.read_bytes()

    marker = tmp_path / "reloaded"
    renew = ["renew", *common, "--cert", str(cert), "--key", str(key), "--exec", f"touch {marker}"]
    assert main([*renew, "--if-expires-within", "30d"]) == 0  # 90 days left: nothing to do
    assert cert.read_bytes() == first and not marker.exists()
    assert "not due" in capsys.readouterr().out

    assert main([*renew, "--if-expires-within", "100d"]) == 0  # due: renewed, files replaced, hook run
    renewed = x509.load_pem_x509_certificate(cert.read_bytes())
    assert cert.read_bytes() != first and marker.exists()
    assert key.stat().st_mode & 0o777 == 0o600
    assert renewed.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=80)
    eku = renewed.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert len(list(eku)) == 2  # kept the peer profile

    # the enrollment token is spent; the renewed certificate works, the hook's failure is reported (exit 4: refused)
    assert main(["enroll", *common, "--token", token, "--cn", "web-3", "--out-dir", str(tmp_path / "x")]) == 4
    with two_workers.client(cert, key) as http:
        assert http.get("/whoami").json()["cn"] == "web-3"
    before = x509.load_pem_x509_certificate(cert.read_bytes()).serial_number
    failing = ["renew", *common, "--cert", str(cert), "--key", str(key), "--exec", "exit 3"]
    assert main(failing) == 2  # a local error: the renewal itself is done and its files are in place
    assert x509.load_pem_x509_certificate(cert.read_bytes()).serial_number != before
    with two_workers.client(cert, key) as http:
        assert http.get("/whoami").json()["cn"] == "web-3"
