"""`pocketca` commands that work on a data dir, without a server."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from service.cli import main
from service.datadir.build import build_authority
from service.settings import Settings

COMMANDS = ["serve", "init", "ca", "token", "issue", "enroll", "renew", "revoke", "openapi"]


def _where(settings: Settings) -> list[str]:
    """The data dir, and the database when it is not the SQLite file in it (the PostgreSQL pass)."""
    return ["--data-dir", str(settings.data_dir), "--database-url", settings.sqlalchemy_url]


def test_help_lists_every_command() -> None:
    result = subprocess.run([sys.executable, "-m", "service", "--help"], capture_output=True, text=True, check=True)
    for command in COMMANDS:
        assert f"    {command} " in result.stdout


def test_every_serve_flag_exists_for_every_variable() -> None:
    result = subprocess.run([sys.executable, "-m", "service", "serve", "--help"], capture_output=True, text=True)
    for field in Settings.model_fields:
        assert f"--{field.replace('_', '-')}" in result.stdout
        assert f"POCKETCA_{field.upper()}" in result.stdout


def test_init_twice_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--data-dir", str(tmp_path / "d"), "--key-type", "p384", "--cn", "Ops Root"]) == 0
    ca = x509.load_pem_x509_certificate((tmp_path / "d" / "ca.pem").read_bytes())
    assert ca.subject.rfc4514_string() == "CN=Ops Root"
    assert main(["init", "--data-dir", str(tmp_path / "d")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_unknown_key_type_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--data-dir", str(tmp_path / "d"), "--key-type", "dsa1024"]) == 2
    assert "unknown key type" in capsys.readouterr().err
    assert not (tmp_path / "d" / "ca.key").exists()


def test_a_data_dir_that_init_made_serves_every_local_command(tmp_path: Path, settings: Settings) -> None:
    """The openssl recipe's order: `init`, then `issue` (issue 22: it said to run `serve` first)."""
    where = _where(settings)
    assert main(["init", *where]) == 0
    out = tmp_path / "web"
    assert main(["issue", *where, "--cn", "localhost", "--profile", "server", "--out-dir", str(out)]) == 0
    certificate = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((settings.data_dir / "ca.pem").read_bytes())
    certificate.verify_directly_issued_by(ca)
    for command in (["token", "create", "--scope", "read"], ["token", "list"], ["ca", "list"]):
        assert main([*command, *where]) == 0, command
    assert not (settings.data_dir / "admin.token").exists()  # `serve` still makes the admin token, on its first run


def test_a_database_without_the_schema_says_to_run_serve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["init", "--data-dir", str(tmp_path / "d")])
    other = f"sqlite:///{tmp_path / 'other.db'}"  # the CA is there; this database is new and empty
    assert main(["token", "create", "--data-dir", str(tmp_path / "d"), "--database-url", other]) == 2
    assert "pocketca serve" in capsys.readouterr().err


def test_token_create_prints_a_token_of_that_scope(settings: Settings, prepared, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["token", "create", *_where(settings), "--scope", "read", "--ttl", "1h"]) == 0
    token = capsys.readouterr().out.strip()
    authority = build_authority(settings)
    caller = authority.authenticate_token(token)
    assert caller.scope == "read"
    authority.close()
    assert main(["token", "create", *_where(settings), "--ttl", "soon"]) != 0


def test_issue_writes_key_cert_chain_and_p12(settings: Settings, prepared, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "alice"
    password = tmp_path / "pw"
    password.write_text("correct horse battery\n")
    argv = [
        "issue",
        *_where(settings),
        "--cn",
        "alice",
        "--san",
        "alice@example.com",
        "--out-dir",
        str(out),
        "--p12",
        str(out / "alice.p12"),
        "--p12-password-file",
        str(password),
    ]
    assert main(argv) == 0
    assert stat.S_IMODE((out / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "alice.p12").stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((settings.data_dir / "ca.pem").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert x509.load_pem_x509_certificates((out / "chain.pem").read_bytes()) == [ca]

    bundle = pkcs12.load_pkcs12((out / "alice.p12").read_bytes(), b"correct horse battery")
    assert bundle.cert is not None and bundle.cert.certificate == cert
    assert [c.certificate for c in bundle.additional_certs] == [ca]
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12((out / "alice.p12").read_bytes(), b"wrong password")
    info = subprocess.run(
        [
            "openssl",
            "pkcs12",
            "-info",
            "-noout",
            "-in",
            str(out / "alice.p12"),
            "-passin",
            "pass:correct horse battery",
        ],
        capture_output=True,
        text=True,
    )
    assert info.returncode == 0, info.stderr
    assert "AES-256-CBC" in info.stderr and "sha256" in info.stderr.lower()


def test_issue_refuses_a_short_p12_password(settings: Settings, prepared, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    password = tmp_path / "pw"
    password.write_text("short\n")
    argv = [
        "issue",
        *_where(settings),
        "--cn",
        "alice",
        "--out-dir",
        str(tmp_path / "o"),
        "--p12",
        str(tmp_path / "o" / "a.p12"),
        "--p12-password-file",
        str(password),
    ]
    assert main(argv) == 2
    assert not (tmp_path / "o" / "a.p12").exists()
