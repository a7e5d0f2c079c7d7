"""The Quick start's two commands do not collide (issue 22): with `pocketca serve` running on its defaults (HTTPS
8443, publication 8080), the tests that start a service or listen themselves pass beside it.

The only test in the suite that uses the default ports: it starts a service on them exactly as the Quick start does,
unless something already holds them (the developer's own service, say: that is the very situation), and runs the
port-sensitive modules in a pytest of their own. Which modules those are is found, not remembered: every module
that starts `serve` other than through `tests.conftest.start_server` (which picks free ports)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.client import build_client_context

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORTS = (8443, 8080)  # POCKETCA_PORT, POCKETCA_HTTP_PORT
# `serve` started by a test itself: in-process `main(["serve", ...])`, or `python -m service serve` as a process
LAUNCHES_SERVE = re.compile(r'main\(\["serve"|run\("serve"|"service", "serve"|\(\*?POCKETCA, "serve"')
# always among them: the health check of the image starts a server like the image's (0.0.0.0)
ALSO = {"tests/test_dockerfile.py"}


def port_sensitive_modules() -> list[str]:
    found = set(ALSO)
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative != "tests/e2e/test_beside_a_service.py" and LAUNCHES_SERVE.search(path.read_text()):
            found.add(relative)
    return sorted(found)


def _in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as serve binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _healthy(ca_file: Path) -> bool:
    try:
        with httpx.Client(verify=build_client_context(ca_file), timeout=5) as http:
            return http.get("https://localhost:8443/healthz").status_code == 200
    except (httpx.TransportError, OSError):
        return False


@pytest.fixture
def quick_start_service(tmp_path: Path) -> Iterator[Path | None]:
    """`.venv/bin/pocketca serve` in a fresh directory with no setting at all: the Quick start's first command.
    Yields its CA file, or None when the default ports were held already (then whatever holds them stays)."""
    if any(_in_use(port) for port in DEFAULT_PORTS):
        yield None
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
    log = open(tmp_path / "quick-start.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "pocketca"), "serve"], cwd=tmp_path, env=env, stdout=log, stderr=log
    )
    ca_file = tmp_path / "pocketca-data" / "ca.pem"
    try:
        deadline = time.monotonic() + 60
        while not (ca_file.exists() and _healthy(ca_file)):
            assert process.poll() is None, (tmp_path / "quick-start.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "quick-start.log").read_text()
            time.sleep(0.2)
        yield ca_file
        assert process.poll() is None, (tmp_path / "quick-start.log").read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_the_port_sensitive_modules_are_found() -> None:
    modules = port_sensitive_modules()
    # the ones issue 22 found, and those that start serve as a process of their own
    for expected in ("tests/api/test_profiles.py", "tests/test_cli_errors.py", "tests/e2e/test_serve_lifecycle.py",
                     "tests/e2e/test_publication.py", "tests/e2e/test_secrets.py"):  # fmt: skip
        assert expected in modules, modules
    assert "tests/e2e/test_beside_a_service.py" not in modules


@pytest.mark.skipif(
    bool(os.environ.get("POCKETCA_TEST_DATABASE_URL")),
    reason="which ports the suite binds does not depend on the database: the SQLite pass proves it (2 minutes)",
)
def test_the_suite_passes_beside_a_service_on_the_default_ports(quick_start_service: Path | None) -> None:
    assert all(_in_use(port) for port in DEFAULT_PORTS) or quick_start_service is None
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_") or k.startswith("POCKETCA_TEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *port_sensitive_modules()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "Address already in use" not in output
    assert re.search(r"\d+ passed", output), output[-2000:]
    if quick_start_service is not None:  # and the service beside it was not disturbed
        assert _healthy(quick_start_service)
