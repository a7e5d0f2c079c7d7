"""Every mistake a user can make ends in one line that names the file, URL or setting and says what to do, with
the contract's exit code (2 usage/config/local file, 3 connect/TLS, 4 refused, 5 server error) -- never a
traceback, and nothing written or issued before the inputs are known good. The real `pocketca` runs as a
subprocess where a terminal, the environment or the process matters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from service.cli import main
from service.client import ClientError
from service.db.session import check_database
from service.errors import UnreachableError
from service.failures import explain
from service.settings import Settings, unknown_variables
from tests.conftest import LiveServer, query
from tests.helpers import ForeignCA, free_port, write_pair

POCKETCA = [sys.executable, "-m", "service"]


def run(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command, without a terminal (stdin /dev/null, a new session) and without the developer's
    POCKETCA_* variables."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
    base["POCKETCA_HTTP_PORT"] = "0"  # no fixed publication port: other runs may hold 8080
    return subprocess.run(
        [*POCKETCA, *argv],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**base, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def one_line(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    err = result.stderr
    assert result.returncode == code, (result.returncode, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line and "warning" not in line]
    assert len(lines) == 1 and lines[0].startswith("pocketca: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _where(settings: Settings) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--database-url", settings.sqlalchemy_url]


# --- local files -----------------------------------------------------------------------------------


def test_missing_ca_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    result = run("enroll", "--server", "https://127.0.0.1:1", "--ca-file", str(missing), "--token", "t", "--cn", "x")
    one_line(result, 2, str(missing), "No such file")


def test_ca_file_that_is_not_pem_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("hello\n")
    result = run("enroll", "--server", "https://127.0.0.1:1", "--ca-file", str(bad), "--token", "t", "--cn", "x")
    one_line(result, 2, str(bad), "no PEM certificate", "pocketca ca bootstrap")


def test_garbage_mismatched_and_encrypted_keys(tmp_path: Path, foreign_ca: ForeignCA) -> None:
    key, certificate = foreign_ca.issue_client("alice")
    cert_file, key_file = write_pair(tmp_path, "alice", key, certificate)
    common = ["renew", "--server", "https://127.0.0.1:1", "--cert", str(cert_file)]

    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key\n")
    one_line(run(*common, "--key", str(garbage)), 2, str(garbage), "not a PEM private key")

    other = tmp_path / "other.key"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    one_line(run(*common, "--key", str(other)), 2, str(other), "not the key of the certificate")

    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"secret12")
        )
    )
    one_line(run(*common, "--key", str(encrypted)), 2, str(encrypted), "encrypted")
    missing = tmp_path / "missing.pem"
    one_line(run("renew", "--server", "https://x", "--cert", str(missing), "--key", str(key_file)), 2, str(missing))


def test_missing_passphrase_file_stops_before_a_key_is_made(tmp_path: Path) -> None:
    data = tmp_path / "data"
    missing = tmp_path / "pass.txt"
    result = run("init", "--data-dir", str(data), "--ca-key-passphrase-file", str(missing))
    one_line(result, 2, str(missing), "POCKETCA_CA_KEY_PASSPHRASE_FILE")
    assert not (data / "ca.key").exists()


def test_encrypted_ca_key_without_its_passphrase(tmp_path: Path) -> None:
    data = tmp_path / "data"
    passphrase = tmp_path / "pass.txt"
    passphrase.write_text("correct horse\n")
    assert run("init", "--data-dir", str(data), "--ca-key-passphrase-file", str(passphrase)).returncode == 0
    result = run("issue", "--data-dir", str(data), "--cn", "x", "--out-dir", str(tmp_path / "o"))
    one_line(result, 2, str(data / "ca.key"), "POCKETCA_CA_KEY_PASSPHRASE_FILE")


# --- the database ----------------------------------------------------------------------------------


def test_database_driver_missing_refuses_before_the_ca_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = "postgresql+psycopg2://postgres:hunter2@127.0.0.1/x"
    result = run("init", "--data-dir", str(data), "--database-url", url)
    line = one_line(result, 2, "psycopg2", "not installed", "postgresql+psycopg://")
    assert "hunter2" not in line
    assert not (data / "ca.key").exists()
    serve = run("serve", "--data-dir", str(data), "--port", str(free_port()), env={"POCKETCA_DATABASE_URL": url})
    one_line(serve, 2, "psycopg2")
    assert not (data / "ca.key").exists()


def test_database_down_is_a_connect_failure_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/pocketca"
    one_line(
        run("init", "--data-dir", str(data), "--database-url", url), 3, "cannot connect to the database", "running"
    )
    assert not (data / "ca.key").exists()


def test_a_data_dir_that_does_not_exist_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    for argv in (("token", "list"), ("acme", "eab", "create"), ("ca", "list")):
        line = one_line(run(*argv, "--data-dir", str(missing)), 2, str(missing), "does not exist", "--data-dir")
        assert "is it running" not in line
    assert not missing.exists()  # nothing made on the way


def test_postgres_urls_mean_psycopg() -> None:
    """Chosen: `postgres://` and `postgresql://` are normalised to the psycopg 3 driver pocketca ships with."""
    for url in ("postgres://u@db.example/ca", "postgresql://u@db.example/ca"):
        settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
        assert settings.database_url == "postgresql+psycopg://u@db.example/ca"
    port = free_port()
    with pytest.raises(UnreachableError, match="cannot connect"):  # driver found; nobody listening
        check_database(Settings(_env_file=None, database_url=f"postgres://u@127.0.0.1:{port}/ca").sqlalchemy_url)  # type: ignore[call-arg]


# --- settings and flags ----------------------------------------------------------------------------


def test_bad_flag_value_blames_the_flag_and_bad_variable_the_variable(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    line = one_line(run("serve", "--data-dir", data, "--port", "abc"), 2, "--port")
    assert "POCKETCA_PORT" not in line
    one_line(run("serve", "--data-dir", data, env={"POCKETCA_PORT": "abc"}), 2, "POCKETCA_PORT")
    assert not (tmp_path / "data" / "ca.key").exists()


def test_a_bad_acme_policy_entry_is_named_in_one_line(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    line = one_line(run("serve", "--data-dir", data, "--acme-deny", "127.0.0.0/8,10.0.0.0/33"), 2, "--acme-deny")
    assert "10.0.0.0/33" in line
    one_line(run("serve", "--data-dir", data, env={"POCKETCA_ACME_ALLOW": "not a name"}), 2, "POCKETCA_ACME_ALLOW")
    assert not (tmp_path / "data" / "ca.key").exists()


def test_unknown_variable_warns_with_the_closest_name(tmp_path: Path) -> None:
    assert unknown_variables({"POCKETCA_PROT": "1", "POCKETCA_PORT": "1", "HOME": "/"}) == [
        "POCKETCA_PROT is not a pocketca setting and is ignored; did you mean POCKETCA_PORT?"
    ]
    result = run("openapi", env={"POCKETCA_PROT": "9000"})
    assert result.returncode == 0
    assert (
        "warning: POCKETCA_PROT is not a pocketca setting and is ignored; did you mean POCKETCA_PORT?" in result.stderr
    )


def test_client_commands_without_a_server(tmp_path: Path) -> None:
    one_line(run("enroll", "--token", "t", "--cn", "x"), 2, "--server", "POCKETCA_SERVER")
    one_line(run("enroll", "--server", "ca.example", "--token", "t", "--cn", "x"), 2, "not a URL")


# --- local issuance ----------------------------------------------------------------------------------


def _certificates(settings: Settings) -> int:
    return int(query(settings.data_dir, "SELECT COUNT(*) FROM certificates")[0][0])  # type: ignore[call-overload]


def test_p12_without_a_terminal_refuses_before_issuing(settings: Settings, prepared, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before = _certificates(settings)
    out = tmp_path / "o"
    result = run("issue", *_where(settings), "--cn", "alice", "--p12", str(tmp_path / "a.p12"), "--out-dir", str(out))
    one_line(result, 2, "--p12-password-file")
    short = tmp_path / "pw"
    short.write_text("short\n")
    argv = ["issue", *_where(settings), "--cn", "alice", "--p12", str(tmp_path / "a.p12"), "--out-dir", str(out)]
    one_line(run(*argv, "--p12-password-file", str(short)), 2, str(short), "at least")
    one_line(run(*argv, "--p12-password-file", str(tmp_path / "none")), 2, str(tmp_path / "none"))
    assert _certificates(settings) == before
    assert not out.exists()


def test_issue_accepts_profiles_from_profiles_toml(settings: Settings, prepared, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (settings.data_dir / "profiles.toml").write_text(
        '[profiles.build-runner]\nextended_key_usage = ["clientAuth"]\n'
        "default_validity_days = 7\nmax_validity_days = 14\n"
    )
    out = tmp_path / "o"
    ok = run("issue", *_where(settings), "--cn", "runner-1", "--profile", "build-runner", "--out-dir", str(out))
    assert ok.returncode == 0, ok.stderr
    assert (out / "cert.pem").exists()
    result = run("issue", *_where(settings), "--cn", "x", "--profile", "nope", "--out-dir", str(tmp_path / "n"))
    one_line(result, 2, "--profile 'nope'", "build-runner")


def test_token_commands_do_not_need_the_ca_key(settings: Settings, prepared) -> None:  # type: ignore[no-untyped-def]
    (settings.data_dir / "ca.key").write_text("unusable: token commands must not read this\n")
    created = run("token", "create", *_where(settings), "--scope", "read", "--json")
    assert created.returncode == 0, created.stderr
    listed = run("token", "list", *_where(settings), "--json")
    assert listed.returncode == 0, listed.stderr
    assert '"scope": "read"' in listed.stdout
    # what does need the key says which file is wrong
    one_line(run("issue", *_where(settings), "--cn", "x"), 2, str(settings.data_dir / "ca.key"))


# --- talking to a server -----------------------------------------------------------------------------


def test_cannot_connect_vs_tls_verification_vs_certificate_not_accepted(
    live_server: LiveServer, tmp_path: Path, foreign_ca: ForeignCA
) -> None:
    nobody = f"https://127.0.0.1:{free_port()}"
    one_line(run("certs", "list", "--server", nobody, "--token", "t"), 3, "cannot connect to", nobody)

    other = tmp_path / "other-ca.pem"
    other.write_bytes(foreign_ca.certificate.public_bytes(Encoding.PEM))
    line = one_line(
        run("certs", "list", "--server", live_server.url, "--ca-file", str(other), "--token", "t"),
        3,
        "TLS verification",
        str(other),
    )
    assert "cannot connect" not in line

    key, certificate = foreign_ca.issue_client("mallory")
    cert_file, key_file = write_pair(tmp_path, "mallory", key, certificate)
    argv = ["renew", "--server", live_server.url, "--ca-file", str(live_server.ca_file)]
    result = run(*argv, "--cert", str(cert_file), "--key", str(key_file))
    one_line(result, 3, "did not accept the client certificate", str(cert_file))


def test_refused_is_4(live_server: LiveServer) -> None:
    argv = ["certs", "list", "--server", live_server.url, "--ca-file", str(live_server.ca_file)]
    one_line(run(*argv, "--token", "pca_nope"), 4, "401")


def test_server_failure_is_5() -> None:
    failure = explain(ClientError(502, {"title": "Bad Gateway", "detail": "upstream"}))
    assert failure is not None and failure.code == 5 and "502" in failure.lines[0]
    failure = explain(ClientError(409, {"title": "Conflict", "detail": "already revoked"}))
    assert failure is not None and failure.code == 4


def test_ca_bootstrap_writes_only_a_matching_root(live_server: LiveServer, tmp_path: Path) -> None:
    from cryptography import x509

    root = x509.load_pem_x509_certificate(live_server.ca_file.read_bytes())
    right = root.fingerprint(hashes.SHA256()).hex()
    wrong = ("00" if right[:2] != "00" else "11") + right[2:]
    out = tmp_path / "ca.pem"
    result = run("ca", "bootstrap", "--server", live_server.url, "--fingerprint", wrong, "--out", str(out))
    one_line(result, 2, right, "nothing written")
    assert not out.exists()
    colons = ":".join(right[i : i + 2] for i in range(0, 64, 2)).upper()
    assert main(["ca", "bootstrap", "--server", live_server.url, "--fingerprint", colons, "--out", str(out)]) == 0
    assert out.read_bytes() == live_server.ca_file.read_bytes()
    one_line(run("ca", "bootstrap", "--server", live_server.url, "--fingerprint", "abc"), 2, "--fingerprint")


def test_serve_on_a_port_in_use_says_so_before_making_anything(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--data-dir", str(tmp_path / "data"), "--port", str(port))
    one_line(result, 2, f"127.0.0.1:{port}", "in use")
    assert not (tmp_path / "data").exists()


def test_unwritable_out_dir_refuses_before_issuing(settings: Settings, prepared, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before = _certificates(settings)
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a directory\n")
    result = run("issue", *_where(settings), "--cn", "x", "--out-dir", str(blocker / "sub"))
    one_line(result, 2, "--out-dir", str(blocker / "sub"))
    assert _certificates(settings) == before


def test_inspect_and_import_mistakes(tmp_path: Path, foreign_ca: ForeignCA) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("nope\n")
    one_line(run("certs", "inspect", str(garbage)), 2, str(garbage), "not a certificate")
    one_line(run("certs", "inspect", "zz-not-a-serial"), 2, "no such file, and not a serial")
    key, certificate = foreign_ca.issue_client("leaf")
    cert_file, key_file = write_pair(tmp_path, "leaf", key, certificate)
    data = str(tmp_path / "data")
    one_line(
        run("init", "--data-dir", data, "--import-key", str(garbage), "--import-cert", str(cert_file)), 2, str(garbage)
    )
    one_line(
        run("init", "--data-dir", data, "--import-key", str(key_file), "--import-cert", str(garbage)), 2, str(garbage)
    )
    line = one_line(run("init", "--data-dir", data, "--import-key", str(key_file), "--import-cert", str(cert_file)), 2)
    assert "not a CA" in line
    assert not (tmp_path / "data" / "ca.key").exists()
