"""How `enroll`, `issue` and `renew` replace a key or certificate file: whole or not at all (issue 22 §1)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from service.keys.files import write_private_file, write_public_file


def test_a_replaced_key_is_swapped_whole_never_rewritten_in_place(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    write_private_file(key, b"old key\n")
    with key.open("rb") as reader:  # a process that opened the key before the renewal (a server reloading it)
        write_private_file(key, b"new key\n")
        assert reader.read() == b"old key\n"  # rename over it: the old file stays whole for whoever holds it
    assert key.read_bytes() == b"new key\n"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]  # no temporary file left beside it


def test_a_write_that_fails_leaves_the_old_file_and_no_debris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert = tmp_path / "cert.pem"
    write_public_file(cert, b"old certificate\n")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_public_file(cert, b"new certificate\n")
    assert cert.read_bytes() == b"old certificate\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cert.pem"]
