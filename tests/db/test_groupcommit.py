"""Group commit: many units, few commits; a failing unit fails alone; nothing returns before it is durable."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from service.db import migrate
from service.db.groupcommit import GroupCommitter
from service.db.models import CounterRecord
from service.db.session import Database


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'g.db'}")
    migrate.upgrade(database)
    return database


def _add(name: str, fail: bool = False):  # type: ignore[no-untyped-def]
    def unit(session: Session) -> str:
        session.add(CounterRecord(name=name, value=1))
        session.flush()
        if fail:
            raise ValueError(f"refused {name}")
        return name

    return unit


def test_units_share_commits_and_failures_stay_alone(db: Database) -> None:
    commits = []
    event.listen(db.engine, "commit", lambda conn: commits.append(1))
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
        other = Database(db.url)  # another connection sees it the moment run() returned
        with other.reader() as session:
            visible[name] = session.scalar(select(CounterRecord.value).where(CounterRecord.name == name)) == 1
        other.dispose()

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


def test_a_unit_that_breaks_a_constraint_fails_alone(db: Database) -> None:
    committer = GroupCommitter(db)
    with db.writer() as session:
        session.add(CounterRecord(name="taken", value=1))
    with pytest.raises(Exception, match=r"UNIQUE|unique|IntegrityError"):
        committer.run(_add("taken"))
    assert committer.run(_add("free")) == "free"  # the committer lives on
    committer.close()
