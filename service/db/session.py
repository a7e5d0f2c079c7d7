"""Engines and units of work.

SQLite runs in WAL mode with synchronous=FULL (a commit survives power loss, not only a crash), and every
write transaction starts with BEGIN IMMEDIATE: it takes the write lock before its first read, so two
workers never both read, then collide with "database is locked" when they write.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.db.sql import Statement, Transaction, execute
from service.errors import ConfigurationError, UnreachableError

SQLITE_BUSY_TIMEOUT_MS = 30_000


class _ThreadConnection:
    """A thread's own DB-API connection (Database.raw): the thread-local holds this, and its finalizer closes it."""

    __slots__ = ("__weakref__", "connection")

    def __init__(self, connection: Any) -> None:
        self.connection = connection

_WRITE = "pocketca_write"


def check_database(url: str) -> None:
    """That the URL names a database whose driver is installed, and that it answers: before anything is written
    (a CA key made for a database that cannot be used is a CA nobody can use)."""
    shown = _shown(url)
    try:
        dialect = make_url(url).get_dialect()
        dialect.import_dbapi()
    except ArgumentError:
        raise ConfigurationError(f"POCKETCA_DATABASE_URL / --database-url is not a database URL: {shown}") from None
    except NoSuchModuleError:
        raise ConfigurationError(
            f"POCKETCA_DATABASE_URL {shown}: unknown database; use sqlite:///FILE or postgresql+psycopg://..."
        ) from None
    except ImportError as exc:
        fix = "pip install 'pocketca[postgres]'" if url.startswith("postgres") else f"install {exc.name}"
        raise ConfigurationError(
            f"POCKETCA_DATABASE_URL {shown}: its driver {exc.name!r} is not installed ({fix}; "
            "for PostgreSQL use postgresql+psycopg://)"
        ) from None
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).parent
        if not folder.is_dir():  # a file database: nothing to run, but its folder must be there
            raise ConfigurationError(
                f"{folder} does not exist (the database {shown} lives there): give the right POCKETCA_DATA_DIR"
                " / --data-dir, or run `pocketca init` or `pocketca serve` first"
            )
    engine = make_engine(url)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        if parsed.get_backend_name() == "sqlite":
            raise ConfigurationError(f"cannot open the database {shown}: {reason}") from None
        raise UnreachableError(
            f"cannot connect to the database {shown} (POCKETCA_DATABASE_URL): {reason}; is it running?"
        ) from None
    finally:
        engine.dispose()


def _shown(url: str) -> str:
    """The URL without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable)"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver must not BEGIN on its own; _sqlite_begin does
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    immediate = connection.get_execution_options().get(_WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_PG_WRITE_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('pocketca:write'))")


class _WriteLock:
    """SQLite writers queue here, not in SQLite's busy handler, which sleeps in growing steps (up to 100 ms):
    a thread lock within the process and an flock beside the database across processes both wake the next
    writer the moment the lock is free."""

    def __init__(self, database: str | None) -> None:
        self._path = f"{database}.write-lock" if database and database != ":memory:" else None
        self._threads = threading.Lock()
        self._handle: int | None = None

    def __enter__(self) -> None:
        if self._path is None:
            return
        self._threads.acquire()
        try:
            if self._handle is None:
                self._handle = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._handle, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *_: object) -> None:
        if self._path is None or self._handle is None:
            return
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._threads.release()


class Database:
    """Hands out sessions: `reader()` for queries, `writer()` for a unit of work that commits at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.engine.execution_options(**{_WRITE: True}), expire_on_commit=False)
        self._write_lock = _WriteLock(self.engine.url.database if url.startswith("sqlite") else None)
        self.postgres = self.engine.dialect.name == "postgresql"
        self.driver_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        self._raw = threading.local()
        self._raw_connections: list[Any] = []
        self._raw_lock = threading.Lock()

    def _detached(self, *, autocommit: bool) -> Any:
        """A DB-API connection of our own, set up as the pool sets up its connections (the SQLite pragmas)."""
        proxy = self.engine.raw_connection()
        proxy.detach()
        connection: Any = proxy.dbapi_connection
        if self.engine.dialect.name == "postgresql":
            connection.rollback()
            connection.autocommit = autocommit
        with self._raw_lock:
            self._raw_connections.append(connection)
        return connection

    def _owned(self, connection: Any) -> _ThreadConnection:
        """`connection` as this thread's: closed when the thread ends (its thread-local storage goes with it), or
        by `dispose`. Without this, a worker thread that ended (a thread pool lets idle ones go) left its
        connection open for the life of the process, and PostgreSQL runs out of connections."""
        held = _ThreadConnection(connection)
        weakref.finalize(held, self._release, connection)
        return held

    def _release(self, connection: Any) -> None:
        with self._raw_lock:
            if not any(c is connection for c in self._raw_connections):  # dispose closed it already
                return
            self._raw_connections = [c for c in self._raw_connections if c is not connection]
        with contextlib.suppress(Exception):
            connection.close()

    def raw(self) -> Any:
        """This thread's DB-API connection for the hot path's reads (autocommit: each read sees the latest
        commit of every worker). Kept for the thread's life; `dispose` closes them all."""
        held: _ThreadConnection | None = getattr(self._raw, "connection", None)
        if held is None or not self._alive(held.connection):
            held = self._raw.connection = self._owned(self._detached(autocommit=True))
        return held.connection

    @contextmanager
    def raw_writer(self) -> Iterator[Any]:
        """A write transaction on a DB-API connection, for the hot path (the group committer): the same write lock
        and BEGIN IMMEDIATE / advisory lock as `writer()`; commits when the block ends normally."""
        postgres = self.engine.dialect.name == "postgresql"
        with self._write_lock:
            held: _ThreadConnection | None = getattr(self._raw, "writer", None)
            if held is None or not self._alive(held.connection):  # psycopg's connection closes when its server goes
                held = self._raw.writer = self._owned(self._detached(autocommit=False))
            connection = held.connection
            try:
                connection.execute(_PG_WRITE_LOCK.text if postgres else "BEGIN IMMEDIATE")
                yield connection
                connection.commit() if postgres else connection.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    connection.rollback() if postgres else connection.execute("ROLLBACK")
                raise

    @contextmanager
    def raw_transaction(self) -> Iterator[Transaction]:
        """`raw_writer` as a Transaction for db/'s write functions (the group committer's batches): its
        after-commit actions are the caller's to run."""
        with self.raw_writer() as connection:
            yield Transaction(connection, self.postgres, self.driver_error)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One change's unit of work, off the hot path: a `writer()` whose DB-API connection db/'s write functions
        use (the same functions as the group committer's units); commits when the block ends normally, then runs
        the transaction's after-commit actions (its audit log lines)."""
        with self.writer() as session:
            connection = session.connection().connection.dbapi_connection
            transaction = Transaction(connection, self.postgres, self.driver_error, session=session)
            yield transaction
        for action in transaction.after_commit:
            action()

    def query(self, statement: Statement, params: Mapping[str, Any]) -> Any:
        """A read on this thread's autocommit DB-API connection (see `raw`): its cursor."""
        return execute(self.raw(), statement.text[self.postgres], params, self.driver_error)

    def _alive(self, connection: Any) -> bool:
        return connection is not None and not getattr(connection, "closed", False)

    @contextmanager
    def reader(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A Core connection for one quick read on a hot path, without the ORM session around it."""
        with self.engine.connect() as connection:
            yield connection

    @contextmanager
    def writer(self) -> Iterator[Session]:
        """Commits when the block ends normally (durably, before the caller sees a result); rolls back otherwise.

        Writers take turns, as on SQLite: on PostgreSQL a transaction-scoped advisory lock first, so batches from
        several workers and replicas never lock rows in different orders (which deadlocks) and read-then-write
        units see each other's commits."""
        with self._write_lock, self._write() as session, session.begin():
            if self.engine.dialect.name == "postgresql":
                session.execute(_PG_WRITE_LOCK)
            yield session

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Waits for a lock held across processes and replicas: a PostgreSQL advisory lock, or an flock beside
        the SQLite file."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as connection:
                key = connection.exec_driver_sql("SELECT hashtext(%(n)s)", {"n": f"pocketca:{name}"}).scalar()
                connection.exec_driver_sql("SELECT pg_advisory_lock(%(k)s)", {"k": key})
                try:
                    yield
                finally:
                    connection.exec_driver_sql("SELECT pg_advisory_unlock(%(k)s)", {"k": key})
                    connection.rollback()
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            yield
            return
        with open(f"{database}.{name}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def try_lock(self, name: str) -> Iterator[bool]:
        """A lock held across processes (and replicas) while the block runs; yields False if another holds it.

        PostgreSQL: a session advisory lock. SQLite: an flock next to the database file (one box by design).
        """
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as connection:
                key = connection.exec_driver_sql("SELECT hashtext(%(n)s)", {"n": f"pocketca:{name}"}).scalar()
                acquired = bool(connection.exec_driver_sql("SELECT pg_try_advisory_lock(%(k)s)", {"k": key}).scalar())
                try:
                    yield acquired
                finally:
                    if acquired:
                        connection.exec_driver_sql("SELECT pg_advisory_unlock(%(k)s)", {"k": key})
                    connection.rollback()
            return
        database = self.engine.url.database
        path = f"{database}.{name}.lock" if database and database != ":memory:" else None
        if path is None:
            yield True
            return
        with open(path, "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def dispose(self) -> None:
        with self._raw_lock:
            connections, self._raw_connections = self._raw_connections, []
        for connection in connections:
            with contextlib.suppress(Exception):  # already closed, or its server gone: nothing left to release
                connection.close()
        self._raw = threading.local()
        self.engine.dispose()
