"""`pocketca backup` while the service runs, `pocketca restore` after: the state of the backup comes back."""

from __future__ import annotations

import stat
import tarfile
import time
from pathlib import Path

import pytest
from cryptography import x509

from service.cli import main
from tests.conftest import LiveServer, start_server
from tests.helpers import csr_pem, p256


def _issue(server: LiveServer, cn: str) -> str:
    with server.client(headers={"Authorization": f"Bearer {server.admin_token}"}) as http:
        response = http.post("/csr", json={"csr": csr_pem(p256(), cn).decode()})
    assert response.status_code == 201
    return str(response.json()["serial"])


def _status(server: LiveServer, serial: str) -> int:
    with server.client(headers={"Authorization": f"Bearer {server.admin_token}"}) as http:
        return http.get(f"/certs/{serial}").status_code


def _revoked_count(server: LiveServer) -> int:
    with server.client() as http:
        return len(x509.load_der_x509_crl(http.get("/crl").content))


def _crl_number(server: LiveServer) -> int:
    with server.client() as http:
        crl = x509.load_der_x509_crl(http.get("/crl").content)
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


@pytest.mark.sqlite_only
def test_backup_issue_more_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    archive = tmp_path / "backups" / "pocketca.tar.gz"
    archive.parent.mkdir()
    server = start_server(data, workers=2)
    try:
        before = [_issue(server, f"before-{i}") for i in range(5)]
        assert main(["backup", "--data-dir", str(data), str(archive)]) == 0  # while it serves
        after = [_issue(server, f"after-{i}") for i in range(3)]
        with server.client(headers={"Authorization": f"Bearer {server.admin_token}"}) as http:
            assert http.post(f"/certs/{after[0]}/revoke").status_code == 200
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _revoked_count(server) < 1:  # the CRL follows within a second
            time.sleep(0.05)
        numbers_seen = _crl_number(server)
        assert numbers_seen > 1
        ca_before = server.ca_file.read_bytes()
    finally:
        assert server.stop() == 0
    assert "backed up 6 certificates" in capsys.readouterr().out  # 5 + the service's own
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        assert {"MANIFEST.json", "pocketca.db", "ca.key", "ca.pem", "server.key", "server.pem", "admin.token"} <= set(
            tar.getnames()
        )

    assert main(["restore", "--data-dir", str(data), str(archive)]) == 2  # refuses to overwrite without --force
    assert "--force" in capsys.readouterr().err
    assert main(["restore", "--data-dir", str(data), str(archive), "--force"]) == 0

    server = start_server(data)
    try:
        assert server.ca_file.read_bytes() == ca_before
        assert all(_status(server, s) == 200 for s in before)
        assert all(_status(server, s) == 404 for s in after)  # the backup's state: issued later is unknown
        assert _crl_number(server) > numbers_seen  # CRL numbers never go back, even after a restore
    finally:
        server.stop()


def test_restore_refuses_a_damaged_backup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tar")
    assert main(["restore", "--data-dir", str(tmp_path / "d"), str(bad)]) == 2
    assert "not a pocketca backup" in capsys.readouterr().err
    assert not (tmp_path / "d" / "pocketca.db").exists()


def test_backup_of_a_postgresql_database_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "backup",
        "--data-dir",
        str(tmp_path),
        "--database-url",
        "postgresql+psycopg://u@127.0.0.1/x",
        str(tmp_path / "b.tar.gz"),
    ]
    assert main(argv) == 2
    assert "pg_dump" in capsys.readouterr().err
