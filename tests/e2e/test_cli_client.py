"""`pocketca enroll`, `renew` and `revoke` against a real server, through service.client."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509

from service.cli import main
from service.client import ClientError, PocketCAClient
from tests.conftest import LiveServer


def _serial(path: Path) -> str:
    return format(x509.load_pem_x509_certificate(path.read_bytes()).serial_number, "x")


def test_enroll_renew_revoke(live_server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--server", live_server.url, "--ca-file", str(live_server.ca_file)]
    out = tmp_path / "build-42"
    argv = [
        "enroll",
        *common,
        "--token",
        live_server.admin_token,
        "--cn",
        "build-42",
        "--san",
        "build-42.ci.internal",
        "--out-dir",
        str(out),
    ]
    assert main(argv) == 0
    cert, key = out / "cert.pem", out / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = _serial(cert)
    with PocketCAClient(live_server.url, ca_file=live_server.ca_file, cert_file=cert, key_file=key) as client:
        me = client.whoami()
    assert me["cn"] == "build-42" and set(me["sans"]) == {"build-42", "build-42.ci.internal"}

    old_key = key.read_bytes()
    assert main(["renew", *common, "--cert", str(cert), "--key", str(key)]) == 0
    assert _serial(cert) != first and key.read_bytes() != old_key
    with PocketCAClient(live_server.url, ca_file=live_server.ca_file, cert_file=cert, key_file=key) as client:
        assert client.whoami()["serial"] == _serial(cert)

    # the holder revokes its own certificate over mTLS
    renewed = _serial(cert)
    assert main(["revoke", *common, "--cert", str(cert), "--key", str(key), renewed, "--reason", "superseded"]) == 0
    assert "revoked" in capsys.readouterr().out
    holder = PocketCAClient(live_server.url, ca_file=live_server.ca_file, cert_file=cert, key_file=key)
    with holder as client, pytest.raises(ClientError) as refused:
        client.whoami()
    assert refused.value.status == 403
    # the first certificate is revoked with the admin token
    assert main(["revoke", *common, "--token", live_server.admin_token, first]) == 0
    assert main(["revoke", *common, "--token", live_server.admin_token, first]) == 4  # 409: already revoked
    assert "already revoked" in capsys.readouterr().err


def test_enroll_with_a_bad_token_fails_cleanly(
    live_server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "enroll",
        "--server",
        live_server.url,
        "--ca-file",
        str(live_server.ca_file),
        "--token",
        "pca_nope",
        "--cn",
        "x",
        "--out-dir",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 4  # the server refused
    assert "401" in capsys.readouterr().err
    assert not (tmp_path / "o" / "key.pem").exists()


def test_client_trusts_only_the_given_ca(live_server: LiveServer, tmp_path: Path, foreign_ca) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.serialization import Encoding

    other = tmp_path / "other-ca.pem"
    other.write_bytes(foreign_ca.certificate.public_bytes(Encoding.PEM))
    from service.errors import UnreachableError

    with PocketCAClient(live_server.url, ca_file=other) as client, pytest.raises(UnreachableError, match="TLS verif"):
        client.get_ca()
    with PocketCAClient(live_server.url, ca_file=live_server.ca_file) as client:
        assert client.get_ca() == live_server.ca_file.read_text()
