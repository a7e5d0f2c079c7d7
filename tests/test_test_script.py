"""`./scripts/test`, the README's second command: a failing SQLite pass is said, the PostgreSQL pass still runs,
and the exit status says a pass failed (CI fails on it). Run on a copy of the script whose `.venv` holds stand-ins
that record how they were called, so the script's own flow is what is tested, in seconds."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _stand_in(path: Path, body: str) -> None:
    path.write_text(f'#!/usr/bin/env bash\necho "$(basename "$0") $*" >> "$CALLS"\n{body}\n')
    path.chmod(0o755)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """scripts/test in an empty tree: python3 (for `-m venv`), pip, ruff and mypy succeed and do nothing; pytest
    fails on SQLite (POCKETCA_TEST_DATABASE_URL empty) when $SQLITE_FAILS says so; PostgreSQL answers."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "test", tmp_path / "scripts" / "test")
    bin_dir, path_dir = tmp_path / ".venv" / "bin", tmp_path / "path"
    bin_dir.mkdir(parents=True)
    path_dir.mkdir()
    _stand_in(path_dir / "python3", "exit 0")
    for tool in ("pip", "ruff", "mypy"):
        _stand_in(bin_dir / tool, "exit 0")
    _stand_in(bin_dir / "python", "exit 0")  # the PostgreSQL reachability probe
    _stand_in(
        bin_dir / "pytest",
        'echo "   db=[${POCKETCA_TEST_DATABASE_URL}]" >> "$CALLS"\n'
        'if [ -z "$POCKETCA_TEST_DATABASE_URL" ] && [ "$SQLITE_FAILS" = yes ]; then echo "1 failed"; exit 1; fi\n'
        'echo "all passed"',
    )
    return tmp_path


def _run(checkout: Path, *, sqlite_fails: bool) -> tuple[subprocess.CompletedProcess[str], str]:
    calls = checkout / "calls.log"
    env = {
        "PATH": f"{checkout / 'path'}:/usr/bin:/bin",
        "CALLS": str(calls),
        "SQLITE_FAILS": "yes" if sqlite_fails else "no",
        "POCKETCA_TEST_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "HOME": os.environ.get("HOME", "/root"),
    }
    result = subprocess.run(
        [str(checkout / "scripts" / "test"), "tests/api", "-x"], capture_output=True, text=True, env=env, timeout=60
    )
    return result, calls.read_text()


def test_a_failing_sqlite_pass_still_runs_the_postgresql_pass_and_fails(checkout: Path) -> None:
    result, calls = _run(checkout, sqlite_fails=True)
    assert result.returncode != 0, result.stdout  # CI must still fail
    assert "pytest on SQLite FAILED" in result.stderr
    pytest_calls = [line for line in calls.splitlines() if line.startswith("pytest")]
    assert pytest_calls == ["pytest tests/api -x", "pytest tests/api -x"], calls  # both passes, the same arguments
    assert "db=[postgresql+psycopg://postgres@127.0.0.1:5432/test]" in calls
    assert result.stdout.strip().splitlines()[-1] == "== pytest on SQLite: FAILED; on PostgreSQL: passed"


def test_both_passes_passing_exit_zero(checkout: Path) -> None:
    result, calls = _run(checkout, sqlite_fails=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "== pytest on SQLite: passed; on PostgreSQL: passed"
    assert calls.count("pytest tests/api -x") == 2
