"""Shared by the fuzz tests: one CA and app per module (hypothesis runs many examples against the same one),
a log trap for unexpected errors, and counters of the generated cases, printed in the terminal summary."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.authority import Authority
from service.datadir.build import build_authority
from service.datadir.prepare import prepare
from service.settings import Settings
from tests.conftest import make_settings

# How many generated cases each property and each schemathesis test ran, for the summary at the end.
CASES: Counter[str] = Counter()
KNOWN_BUGS = "known bugs"  # the minimal failing tests, each named for the behaviour it wants
SERVER_ERRORS: Counter[str] = Counter()  # 5xx responses seen (and failed on) by the tests, by property
# Findings of schemathesis's other checks (schema conformance...), reported but not failed on: (caller, op, check).
INFORMATIONAL: Counter[tuple[str, str, str]] = Counter()
_current = [""]


def count(name: str) -> None:
    """Counts one generated case of `name`."""
    CASES[name] += 1
    _current[0] = name


def saw_status(status: int) -> None:
    """Called with every status before it is checked: a 5xx the test reports accounts for one logged error."""
    if status >= 500:
        SERVER_ERRORS[_current[0]] += 1


class ErrorTrap(logging.Handler):
    """Keeps every ERROR record from the service's loggers: an unexpected exception is logged there, even when
    no 5xx shows it. Errors behind a 5xx a test already failed on are not reported twice."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.shown_before = sum(SERVER_ERRORS.values())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def unexplained(self) -> list[str]:
        shown = sum(SERVER_ERRORS.values()) - self.shown_before
        return [r.getMessage() for r in self.records][shown:]


@dataclass
class FuzzEnv:
    settings: Settings
    authority: Authority
    admin_token: str
    trap: ErrorTrap = field(default_factory=ErrorTrap)

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzEnv]:
    """A data dir as `pocketca serve` leaves it, shared by all examples of a module. On tmpfs when there is one:
    every refusal writes an audit row, and SQLite's synchronous=FULL fsyncs would dominate the run time."""
    shm = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(prefix="pocketca-fuzz-", dir=shm)) if shm.is_dir() else tmp_path_factory.mktemp("fuzz")
    settings = make_settings(base / "data")
    prepared = prepare(settings)
    assert prepared.admin_token is not None
    authority = build_authority(settings)
    env = FuzzEnv(settings, authority, prepared.admin_token)
    logger = logging.getLogger("pocketca")
    logger.addHandler(env.trap)
    try:
        yield env
    finally:
        logger.removeHandler(env.trap)
        authority.close()
        if base.parent == shm:
            shutil.rmtree(base, ignore_errors=True)
    assert not env.trap.unexplained(), env.trap.unexplained()[:20]


@pytest.fixture(scope="module")
async def fuzz_http(fuzz_env: FuzzEnv) -> AsyncIterator[httpx.AsyncClient]:
    """The app through httpx.ASGITransport; an exception that escapes the app becomes a 500 here, not a raise."""
    app = create_app(authority=fuzz_env.authority)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver", timeout=30) as http:
        yield http


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not CASES:
        return
    terminalreporter.section("fuzz: generated cases")
    for name, n in sorted(CASES.items()):
        failed = f" ({SERVER_ERRORS[name]} answered with a 5xx)" if name in SERVER_ERRORS else ""
        terminalreporter.write_line(f"{name}: {n}{failed}")
    schemathesis = sum(n for name, n in CASES.items() if name.startswith("schemathesis"))
    properties = sum(CASES.values()) - schemathesis
    terminalreporter.write_line(
        f"fuzz total: {sum(CASES.values())} cases ({properties} property examples, {schemathesis} schemathesis cases)"
    )
    for (caller, operation, check), n in sorted(INFORMATIONAL.items()):
        terminalreporter.write_line(f"schemathesis, informational ({caller}): {operation}: {check} x{n}")
