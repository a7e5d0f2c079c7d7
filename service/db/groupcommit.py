"""Group commit: write units from many request threads share one transaction, so one fsync covers them all.

Each unit runs inside its own SAVEPOINT: a unit that raises is rolled back alone and its caller gets the
exception; the others commit together. Callers wait until the commit has returned, so no one sees a result
before it is durable.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from service.db.session import Database

T = TypeVar("T")
log = logging.getLogger("pocketca.db")


@dataclass
class _Item(Generic[T]):
    unit: Callable[[Session], T]
    done: threading.Event = field(default_factory=threading.Event)
    result: T | None = None
    error: BaseException | None = None


class GroupCommitter:
    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 64,
        before_unit: Callable[[Session], object] | None = None,
        after_failure: Callable[[Session, object], None] | None = None,
        after_commit: Callable[[Session], None] | None = None,
    ) -> None:
        self.db = db
        self.max_batch = max_batch
        self._before_unit = before_unit
        self._after_failure = after_failure
        self._after_commit = after_commit
        self._queue: queue.SimpleQueue[_Item[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def run(self, unit: Callable[[Session], T]) -> T:
        """Runs `unit(session)` in the next batch; returns its result once the batch is committed."""
        self._ensure_thread()
        item: _Item[T] = _Item(unit)
        self._queue.put(item)
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[return-value]

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="pocketca-commit", daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch: list[_Item[Any]] = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Item[Any]]) -> None:
        try:
            with self.db.writer() as session:
                for item in batch:
                    mark = self._before_unit(session) if self._before_unit else None
                    try:
                        with session.begin_nested():
                            item.result = item.unit(session)
                    except Exception as exc:  # this unit alone rolls back; its caller gets the error
                        item.error = exc
                        if self._after_failure:
                            self._after_failure(session, mark)
            if self._after_commit:
                self._after_commit(session)
        except Exception as exc:  # the commit itself failed: nothing in the batch is recorded
            log.exception("group commit of %d units failed", len(batch))
            for item in batch:
                if item.error is None:
                    item.error, item.result = exc, None
        finally:
            for item in batch:
                item.done.set()
