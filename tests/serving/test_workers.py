"""serving.workers: the supervisor forks its workers, replaces one that dies, stops when one cannot start,
forwards SIGHUP to every worker and stops them all on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from service.serving.workers import Supervisor

_WATCHER = """
import os, sys, time
from pathlib import Path
directory, pattern = Path(sys.argv[1]), sys.argv[2]
count, pid, sig = (int(a) for a in sys.argv[3:6])
deadline = time.monotonic() + 20
while time.monotonic() < deadline and len(list(directory.glob(pattern))) < count:
    time.sleep(0.05)
os.kill(pid, sig)
"""


def _signal_me_when(directory: Path, pattern: str, count: int, sig: signal.Signals) -> subprocess.Popen[bytes]:
    """Sends `sig` to this process once `count` files match `pattern` (from a process of its own: the supervisor
    forks, so this process keeps one thread)."""
    args = [str(directory), pattern, str(count), str(os.getpid()), str(int(sig))]
    return subprocess.Popen([sys.executable, "-c", _WATCHER, *args])


def _serving(directory: Path) -> None:
    """A worker: notes its pid, notes each SIGHUP, and serves until SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: (directory / f"hup-{os.getpid()}").touch())
    (directory / f"up-{os.getpid()}").touch()
    while not stop.wait(0.05):
        pass


def _cannot_start(_: Path) -> None:
    started = time.monotonic()
    Supervisor(lambda: sys.exit(3), 2).run()  # uvicorn's STARTUP_FAILURE
    assert time.monotonic() - started < 10


def _sighup_and_sigterm(tmp_path: Path) -> None:
    supervisor = Supervisor(lambda: _serving(tmp_path), 2)
    watchers = [
        _signal_me_when(tmp_path, "up-*", 2, signal.SIGHUP),
        _signal_me_when(tmp_path, "hup-*", 2, signal.SIGTERM),
    ]
    previous = signal.getsignal(signal.SIGTERM)
    supervisor.run()
    for watcher in watchers:
        watcher.wait(timeout=10)
    ups, hups = ({p.name.split("-")[1] for p in tmp_path.glob(f"{kind}-*")} for kind in ("up", "hup"))
    assert len(ups) == 2 and hups == ups
    assert all(process.exitcode == 0 for process in supervisor.processes)
    assert signal.getsignal(signal.SIGTERM) is previous  # the supervisor's handlers are gone with it


def _dies_and_is_replaced(tmp_path: Path) -> None:
    def first_dies() -> None:
        if not (tmp_path / "died").exists():
            (tmp_path / "died").touch()
            os._exit(1)
        _serving(tmp_path)

    supervisor = Supervisor(first_dies, 1)
    watcher = _signal_me_when(tmp_path, "up-*", 1, signal.SIGTERM)
    supervisor.run()
    watcher.wait(timeout=10)
    assert (tmp_path / "died").exists() and len(list(tmp_path.glob("up-*"))) == 1


_CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.serving import test_workers
getattr(test_workers, sys.argv[2])(Path(sys.argv[3]))
"""


def _in_a_fresh_process(scenario: str, tmp_path: Path) -> None:
    """The supervisor forks only from a process without other threads (serving.workers), and the suite's
    process has some by now: each scenario runs in a Python of its own, its assertions there."""
    root = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), scenario, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0, child.stderr[-3000:]


def test_a_worker_that_cannot_start_stops_the_supervisor(tmp_path: Path) -> None:
    _in_a_fresh_process("_cannot_start", tmp_path)


def test_sighup_reaches_every_worker_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    _in_a_fresh_process("_sighup_and_sigterm", tmp_path)


def test_a_worker_that_dies_is_replaced(tmp_path: Path) -> None:
    _in_a_fresh_process("_dies_and_is_replaced", tmp_path)


def test_a_failing_scenario_fails_the_test(tmp_path: Path) -> None:
    """The harness itself: an assertion that fails in the child fails the test here."""
    with pytest.raises(AssertionError, match="AssertionError"):
        _in_a_fresh_process("_fails", tmp_path)


def _fails(_: Path) -> None:
    raise AssertionError("a scenario that fails")
