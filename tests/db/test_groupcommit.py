"""Group commit: many units, few commits; a failing unit fails alone; nothing returns before it is durable."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from service.db import migrate
from service.db.groupcommit import GroupCommitter, Transaction
from service.db.models import CounterRecord
from service.db.session import Database
from tests.conftest import database_url_for


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """SQLite, or the PostgreSQL pass's database (the committer's savepoints and retries differ there)."""
    database = Database(database_url_for(tmp_path / "data") or f"sqlite:///{tmp_path / 'g.db'}")
    migrate.upgrade(database)
    yield database
    database.dispose()  # the committer's connections too


def _add(name: str, fail: bool = False):  # type: ignore[no-untyped-def]
    def unit(transaction: Transaction) -> str:
        placeholder = "%s" if type(transaction.connection).__module__.startswith("psycopg") else "?"
        transaction.connection.execute(f"INSERT INTO counters (name, value) VALUES ({placeholder}, 1)", (name,))
        transaction.after_commit.append(lambda: committed.append(name))
        if fail:
            raise ValueError(f"refused {name}")
        return name

    return unit


committed: list[str] = []


def _value(db: Database, name: str) -> int | None:
    other = Database(db.url)  # another connection sees it the moment run() returned
    try:
        with other.reader() as session:
            return session.scalar(select(CounterRecord.value).where(CounterRecord.name == name))
    finally:
        other.dispose()


def _count_commits(db: Database) -> list[int]:
    """Counts COMMITs on the committer's connection (the DB-API one: SQLAlchemy's events do not see it)."""
    commits: list[int] = []
    original = db.raw_writer

    def counting():  # type: ignore[no-untyped-def]
        commits.append(1)
        return original()

    db.raw_writer = counting  # type: ignore[method-assign]
    return commits


def test_units_share_commits_and_failures_stay_alone(db: Database) -> None:
    commits = _count_commits(db)
    committed.clear()
    committer = GroupCommitter(db)
    results: dict[str, object] = {}
    visible: dict[str, bool] = {}
    barrier = threading.Barrier(40)

    def worker(index: int) -> None:
        name = f"n{index}"
        barrier.wait()
        try:
            results[name] = committer.run(_add(name, fail=index % 10 == 0))
        except ValueError as exc:
            results[name] = exc
        visible[name] = _value(db, name) == 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    committer.close()

    failed = {n for n, r in results.items() if isinstance(r, ValueError)}
    assert failed == {f"n{i}" for i in range(0, 40, 10)}
    assert all(results[f"n{i}"] == f"n{i}" for i in range(40) if i % 10)
    assert all(visible[f"n{i}"] for i in range(40) if i % 10)
    assert not any(visible[n] for n in failed)
    assert len(commits) < 40  # batched: fewer commits (fsyncs) than units
    assert sorted(committed) == sorted(f"n{i}" for i in range(40) if i % 10)  # after-commit: the committed only


def test_a_unit_that_breaks_a_constraint_fails_alone(db: Database) -> None:
    committer = GroupCommitter(db)
    with db.writer() as session:
        session.add(CounterRecord(name="taken", value=2))
    with pytest.raises(Exception, match=r"UNIQUE|unique|IntegrityError"):
        committer.run(_add("taken"))
    assert committer.run(_add("free")) == "free"  # the committer lives on
    committer.close()
    assert _value(db, "taken") == 2


@pytest.mark.anyio
async def test_the_event_loop_awaits_the_commit_without_a_thread_of_its_own(db: Database) -> None:
    committer = GroupCommitter(db)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    names = await asyncio.gather(*(committer.submit(_add(f"a{i}")) for i in range(20)))
    with pytest.raises(ValueError, match="refused bad"):
        await committer.submit(_add("bad", fail=True))
    ticking.cancel()
    committer.close()
    assert names == [f"a{i}" for i in range(20)]
    assert all(_value(db, f"a{i}") == 1 for i in range(20))
    assert _value(db, "bad") is None
    assert ticks > 0  # the loop ran other tasks while the batches committed


@pytest.mark.sqlite_only  # PostgreSQL lets a COMMIT without a transaction pass (with a warning)
def test_a_failed_commit_fails_every_unit_in_the_batch(db: Database) -> None:
    committer = GroupCommitter(db)

    def breaks_the_transaction(transaction: Transaction) -> None:
        transaction.connection.execute("ROLLBACK")  # what follows finds no transaction to finish

    with pytest.raises(Exception, match=r"no such savepoint|no transaction is active"):
        committer.run(breaks_the_transaction)
    assert committer.run(_add("after")) == "after"  # the next batch starts clean
    committer.close()


def test_a_lone_client_never_waits_for_company(db: Database) -> None:
    """Batches of one (a single client issuing in a loop) commit at once, however long max_wait is."""
    committer = GroupCommitter(db, max_wait=5.0)
    started = time.monotonic()
    for i in range(4):
        assert committer.run(_add(f"lone{i}")) == f"lone{i}"
    committer.close()
    assert time.monotonic() - started < 5.0  # one wait of max_wait would already be 5 s
    assert committer.batches == 4


def test_a_unit_being_prepared_is_waited_for(db: Database) -> None:
    """`expect()` holds a started batch (up to max_wait) for a unit still being signed: one commit for both."""
    committer = GroupCommitter(db, max_wait=5.0)
    first = threading.Thread(target=committer.run, args=(_add("first"),))
    with committer.expect():  # as sign_csr_async: the expectation covers the signing, the submit follows it
        first.start()
        time.sleep(0.2)  # the batch has started and is waiting for the expected unit
        assert _value(db, "first") is None
    started = time.monotonic()
    assert committer.run(_add("second")) == "second"
    first.join(timeout=10)
    committer.close()
    assert time.monotonic() - started < 5.0  # no wait once nothing more is expected
    assert _value(db, "first") == 1 and _value(db, "second") == 1
    assert committer.batches == 1
