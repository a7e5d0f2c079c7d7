"""Fixtures for all three levels: pure X.509, the API through httpx.ASGITransport, and a real server."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import sqlalchemy

from service.app import create_app
from service.authority import Authority
from service.client import build_client_context
from service.datadir.build import build_authority
from service.datadir.issuers import load_ca
from service.datadir.prepare import Prepared, prepare
from service.db import migrate
from service.db.session import Database
from service.http.callers import peer_certificate
from service.settings import Settings
from tests.helpers import ForeignCA, free_port


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def foreign_ca() -> ForeignCA:
    return ForeignCA()


# --- which database: SQLite in the data dir, or PostgreSQL when POCKETCA_TEST_DATABASE_URL is set ------------

PG_URL = os.environ.get("POCKETCA_TEST_DATABASE_URL")  # e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test
PG_PREFIX = "pocketca_t_"
_CREATED: set[str] = set()  # dropped when this session ends (and only these: another run may be going on)


def database_url_for(data_dir: Path) -> str | None:
    """Under PostgreSQL, one database per data dir (made on first use), so a restart finds its data again."""
    if not PG_URL:
        return None
    name = PG_PREFIX + hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:16]
    admin = sqlalchemy.make_url(PG_URL)
    with psycopg.connect(
        admin.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
    ) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')
        _CREATED.add(name)
    return admin.set(database=name).render_as_string(hide_password=False)


E2E_DIR = Path(__file__).resolve().parent / "e2e"
# Fixtures that start a real `pocketca serve` (a subprocess over TLS): a test using one is end-to-end wherever it is.
LIVE_FIXTURES = frozenset({"live_server"})


def is_e2e(item: pytest.Item) -> bool:
    """The slow tier: everything under tests/e2e/, and any test that asks for a real server."""
    return item.path.is_relative_to(E2E_DIR) or not LIVE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if is_e2e(item):
            item.add_marker(pytest.mark.e2e)
    if PG_URL:
        skip = pytest.mark.skip(
            reason="reads the SQLite file itself; the PostgreSQL pass covers the behaviour elsewhere"
        )
        for item in items:
            if "sqlite_only" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    yield
    if not PG_URL:
        return
    admin = sqlalchemy.make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        for name in sorted(_CREATED):
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings from explicit values only, never from the developer's environment or .env."""
    if "database_url" not in overrides and (url := database_url_for(data_dir)):
        overrides["database_url"] = url
    return Settings(_env_file=None, data_dir=data_dir, **overrides)  # type: ignore[call-arg]


def query(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    """Runs SQL against the database of a data dir, SQLite or PostgreSQL alike."""
    engine = sqlalchemy.create_engine(make_settings(data_dir).sqlalchemy_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.exec_driver_sql(sql)]
    finally:
        engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


_HEAD_DATABASE: list[bytes] = []  # an empty SQLite database at the head revision, made once per session


def _start_at_head(settings: Settings) -> None:
    """On SQLite, a new data dir starts with a copy of an empty database already at the head revision: running
    alembic's DDL is half of what `prepare` costs, and ~300 tests prepare a data dir. prepare's upgrade then finds
    the schema at head, as a restart does; the schema is the same (tests/db check the migrations themselves)."""
    if settings.database_url is not None or settings.data_dir.exists():
        return
    if not _HEAD_DATABASE:
        with tempfile.TemporaryDirectory() as directory:
            database = Database(f"sqlite:///{directory}/head.db")
            try:
                migrate.upgrade(database)
            finally:
                database.dispose()
            _HEAD_DATABASE.append((Path(directory) / "head.db").read_bytes())
    settings.data_dir.mkdir(parents=True, mode=0o700)
    (settings.data_dir / "pocketca.db").write_bytes(_HEAD_DATABASE[0])


@pytest.fixture
def prepared(settings: Settings) -> Prepared:
    """A data dir as the first `pocketca serve` leaves it: CA, schema, admin token, server certificate."""
    _start_at_head(settings)
    return prepare(settings)


@pytest.fixture
def admin_token(prepared: Prepared) -> str:
    assert prepared.admin_token is not None
    return prepared.admin_token


@pytest.fixture
def authority(settings: Settings, prepared: Prepared) -> Iterator[Authority]:
    authority = build_authority(settings)
    yield authority
    authority.close()


def authority_at(settings: Settings, when: dt.datetime) -> Authority:
    """The same CA and database with the clock set to `when`: for expired and back-dated certificates."""
    keystore, certificate = load_ca(settings)
    return Authority(
        Database(settings.sqlalchemy_url), keystore, certificate, public_url=settings.public_url, clock=lambda: when
    )


@dataclass
class ApiClient:
    """The app through httpx.ASGITransport. No TLS here: `as_peer` plays the client certificate."""

    http: httpx.AsyncClient
    app: object

    def as_peer(self, der: bytes | None) -> None:
        self.app.dependency_overrides[peer_certificate] = lambda: der  # type: ignore[attr-defined]


@pytest.fixture
async def api(authority: Authority) -> AsyncIterator[ApiClient]:
    app = create_app(authority=authority)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield ApiClient(http=http, app=app)


# --- a real `pocketca serve` ----------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    http_port: int = 0  # the plain-HTTP publication listener

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "ca.pem"

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def client(self, cert: Path | None = None, key: Path | None = None, **kwargs: object) -> httpx.Client:
        context = build_client_context(self.ca_file, cert, key)
        if (self.data_dir / "chain.pem").exists():  # an intermediate: trust its root too (no partial chains)
            context.load_verify_locations(cafile=str(self.data_dir / "chain.pem"))
        return httpx.Client(base_url=self.url, verify=context, timeout=15, **kwargs)  # type: ignore[arg-type]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    data_dir: Path,
    *,
    workers: int = 1,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: float = 30.0,
    log_path: Path | None = None,
) -> LiveServer:
    """Starts `python -m service serve` (the real CLI) and waits until /healthz answers over TLS. Its log goes
    next to the data dir unless `log_path` says where."""
    port = port or free_port()
    http_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
    env.update(
        {
            "POCKETCA_DATA_DIR": str(data_dir),
            "POCKETCA_PORT": str(port),
            "POCKETCA_HTTP_PORT": str(http_port),
            "POCKETCA_PUBLICATION_URL": f"http://127.0.0.1:{http_port}",
            "POCKETCA_WORKERS": str(workers),
            "POCKETCA_PUBLIC_URL": f"https://localhost:{port}",
        }
    )
    if url := database_url_for(data_dir):
        env["POCKETCA_DATABASE_URL"] = url
    env.update(extra_env or {})
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    log_path = log_path or data_dir.parent / f"serve-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=data_dir.parent,
        )
    server = LiveServer(f"https://localhost:{port}", port, data_dir, process, log_path, int(env["POCKETCA_HTTP_PORT"]))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pocketca serve exited with {process.returncode}:\n{server.log()}")
        if server.ca_file.exists():
            try:
                with server.client() as http:
                    if http.get("/healthz").status_code == 200:
                        return server
            except (httpx.TransportError, OSError):
                pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"pocketca serve did not become healthy:\n{server.log()}")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("live") / "data")
    yield server
    server.stop()
