"""`pocketca init --intermediate` and `pocketca ca rotate`: every mistake is one line, and nothing is half made."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from service.cli import main
from service.datadir.issuers import load_retired
from service.datadir.offline_root import init_intermediate
from service.datadir.prepare import prepare
from service.datadir.rotation import rotate_with_root


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.fixture
def passphrase(tmp_path: Path) -> Path:
    path = tmp_path / "pass"
    path.write_text("correct horse\n")
    return path


def test_init_refusals(tmp_path: Path, passphrase: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d"
    base = ["init", "--data-dir", str(data)]
    assert main([*base, "--permitted-dns", "example.com"]) == 2
    assert "name constraints go on an intermediate" in _err(capsys)
    assert main([*base, "--intermediate"]) == 2
    assert "--root-out" in _err(capsys)
    assert main([*base, "--intermediate", "--root-out", str(data / "root.pem"), "--root-passphrase-file",
                 str(passphrase)]) == 2  # fmt: skip
    assert "must not go into the data dir" in _err(capsys)
    short = tmp_path / "short"
    short.write_text("abc\n")
    root = tmp_path / "root.pem"
    assert main([*base, "--intermediate", "--root-out", str(root), "--root-passphrase-file", str(short)]) == 2
    assert "at least 8 characters" in _err(capsys)
    outside = [*base, "--intermediate", "--root-out", str(root), "--root-passphrase-file", str(passphrase)]
    assert main([*outside, "--permitted-dns", "example.com"]) == 2
    assert "DNS localhost is outside the permitted names" in _err(capsys)
    assert main([*outside, "--permitted-ip", "10.0.0.1/8"]) == 2
    assert "is not an IP range" in _err(capsys)
    assert not root.exists() and not (data / "ca.key").exists()


def test_rotate_refusals(tmp_path: Path, passphrase: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d"
    assert main(["init", "--data-dir", str(data)]) == 0  # a self-signed CA: nothing to rotate under
    capsys.readouterr()
    rotate = ["ca", "rotate", "--data-dir", str(data)]
    assert main(rotate) == 2
    assert "give one of --root-file" in _err(capsys)
    assert main([*rotate, "--csr-out", str(tmp_path / "x.csr")]) == 2
    assert "self-signed root, not an intermediate" in _err(capsys)
    assert main([*rotate, "--import-cert", str(tmp_path / "x.pem")]) == 2
    assert "no rotation is pending" in _err(capsys)

    other = tmp_path / "other"
    root = tmp_path / "root.pem"
    made = ["init", "--data-dir", str(other), "--intermediate", "--root-out", str(root)]
    assert main([*made, "--root-passphrase-file", str(passphrase)]) == 0
    capsys.readouterr()
    stranger = tmp_path / "stranger.pem"
    assert main(["init", "--data-dir", str(tmp_path / "s"), "--intermediate", "--root-out", str(stranger),
                 "--root-passphrase-file", str(passphrase)]) == 0  # fmt: skip
    capsys.readouterr()
    rotate = ["ca", "rotate", "--data-dir", str(other), "--root-passphrase-file", str(passphrase)]
    assert main([*rotate, "--root-file", str(stranger)]) == 2
    assert "is not the root of the current issuing CA" in _err(capsys)
    assert main([*rotate, "--root-file", str(tmp_path / "missing.pem")]) == 2
    assert "cannot read the root file" in _err(capsys)


def test_a_retired_issuer_answers_until_its_last_certificate_expires(tmp_path: Path, passphrase: Path) -> None:
    import datetime as dt

    from service.db.session import Database
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "d")
    root = tmp_path / "root.pem"
    init_intermediate(settings, root, b"correct horse")
    prepare(settings)  # the server certificate: the first issuer's only certificate, for 90 days
    server = x509.load_pem_x509_certificate((tmp_path / "d" / "server.pem").read_bytes())
    first = rotate_with_root(settings, root, b"correct horse")
    assert first.subject.rfc4514_string() == "CN=pocketca issuing CA 2"
    db = Database(settings.sqlalchemy_url)
    try:
        before = load_retired(settings, db, server.not_valid_after_utc - dt.timedelta(seconds=1))
        after = load_retired(settings, db, server.not_valid_after_utc)
    finally:
        db.dispose()
    assert [i.certificate.subject.rfc4514_string() for i in before] == ["CN=pocketca issuing CA 1"]
    assert after == []
    prepared = prepare(settings)  # a rotation: the server certificate comes from the new issuer now
    assert prepared.server_certificate_issued
