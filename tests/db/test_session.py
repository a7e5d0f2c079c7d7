"""SQLite as we run it: WAL, full sync, write transactions that take the lock first, aware UTC times."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import exc

from service.authority import Authority
from service.db import counters, migrate
from service.db.models import CertificateRecord, CounterRecord
from service.db.session import Database
from service.settings import Settings
from tests.conftest import authority_at
from tests.helpers import p256


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 't.db'}")
    migrate.upgrade(database)
    return database


def test_pragmas(db: Database) -> None:
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


def test_times_come_back_aware_utc(db: Database) -> None:
    stamp = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with db.writer() as session:
        session.add(
            CertificateRecord(
                serial="ab",
                cn="x",
                subject="CN=x",
                sans=[],
                profile="client",
                not_before=stamp,
                not_after=stamp,
                status="valid",
                fingerprint_sha256="0",
                created_at=stamp,
                der=b"\x00",
            )
        )
    with db.reader() as session:
        record = session.query(CertificateRecord).one()
    assert record.not_after == stamp and record.not_after.tzinfo == dt.UTC
    with pytest.raises(exc.StatementError), db.writer() as session:
        session.add(CounterRecord(name="x", value=1))
        session.add(
            CertificateRecord(
                serial="cd",
                cn="x",
                subject="CN=x",
                sans=[],
                profile="client",
                not_before=dt.datetime(2030, 1, 1),
                not_after=stamp,
                status="valid",
                fingerprint_sha256="0",
                created_at=stamp,
                der=b"\x00",
            )
        )
        session.flush()


def test_writer_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction() as transaction:
        counters.increment(transaction, "n")
        raise RuntimeError("boom")
    with db.reader() as session:
        assert counters.value_in(session, "n") == 0


def test_concurrent_read_then_write_never_locks(tmp_path: Path) -> None:
    """Eight connections each do 50 read-modify-write transactions: no 'database is locked', no lost update."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    migrate.upgrade(Database(url))
    errors: list[BaseException] = []

    def work() -> None:
        database = Database(url)  # its own engine: like another worker process
        try:
            for _ in range(50):
                with database.writer() as session:
                    value = counters.value_in(session, "n")  # read first ...
                    session.merge(CounterRecord(name="n", value=value + 1))  # ... then write what was read
        except BaseException as error:
            errors.append(error)
        finally:
            database.dispose()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with Database(url).reader() as session:
        assert counters.value_in(session, "n") == 400


def test_parallel_issuance_and_revocation(settings: Settings, authority: Authority, admin_token: str) -> None:
    """Separate authorities (separate connection pools) issue and revoke at once: every change lands once."""
    caller = authority.authenticate_token(admin_token)
    serials: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        own = authority_at(settings, dt.datetime.now(dt.UTC))
        try:
            for index in range(15):
                issued = own.issue_for_key(p256().public_key(), cn=f"n{index}", sans=[])
                if index % 3 == 0:
                    own.revoke(issued.summary.serial, reason="superseded", caller=caller)
                with lock:
                    serials.append(issued.summary.serial)
        except BaseException as error:
            errors.append(error)
        finally:
            own.close()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(set(serials)) == 90
    with authority.db.reader() as session:
        rows = session.query(CertificateRecord).filter(CertificateRecord.serial.in_(serials)).all()
        assert len(rows) == 90
        assert sum(r.status == "revoked" for r in rows) == 30
        assert counters.value_in(session, "revocations") == 30


def test_a_threads_own_connections_close_when_the_thread_ends(settings: Settings, prepared: object) -> None:
    """Found by the console fuzzer on PostgreSQL ("too many clients already"): the hot path's per-thread DB-API
    connections (Database.raw, raw_writer) outlived their threads, so every worker thread a pool let go left one
    open. SQLite or PostgreSQL, whichever this pass runs on."""
    db = Database(settings.sqlalchemy_url)
    seen: list[object] = []

    def work() -> None:
        connection = db.raw()
        connection.execute("SELECT 1")
        with db.raw_writer() as writer:
            writer.execute("SELECT 1")
        seen.extend([connection, writer])

    for _ in range(30):  # more than PostgreSQL would have room for, were they kept
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert len(seen) == 60
    for connection in seen:
        closed = getattr(connection, "closed", None)
        if closed is None:  # sqlite3: a closed connection refuses to run anything
            with pytest.raises(Exception, match="closed"):
                connection.execute("SELECT 1")  # type: ignore[attr-defined]
        else:
            assert closed
    assert db.raw().execute("SELECT 1").fetchone() == (1,)  # this thread's own is still there, until dispose
    db.dispose()
