"""Group commit: write units from many requests share one transaction, so one fsync covers them all.

Units run on the committer's thread against a DB-API connection (`db.sql.Transaction`, which every write function
of db/ takes: the hot path and the cold one share them), each inside its own SAVEPOINT: a unit that raises is
rolled back alone and its caller gets the exception; the others commit together. Callers wait until the commit
has returned, so no one sees a result before it is durable: threads with `run`, the event loop with
`await submit(...)` (no thread of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from service import metrics
from service.db.session import Database
from service.db.sql import Transaction

__all__ = ["GroupCommitter", "Transaction"]

T = TypeVar("T")
log = logging.getLogger("pocketca.db")


@dataclass
class _Item(Generic[T]):
    unit: Callable[[Transaction], T]
    notify: Callable[[_Item[T]], None]
    result: T | None = None
    error: BaseException | None = None
    # the submitter's context (its request id): the unit runs in it, so what it logs names the request
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


class GroupCommitter:
    def __init__(self, db: Database, *, max_batch: int = 64, max_wait: float = 0.002) -> None:
        self.db = db
        self.max_batch = max_batch
        self.max_wait = max_wait  # the longest a batch waits for more units (see `expect` and `_loop`)
        self._expected = 0
        self._busy_until = 0.0  # with batches of company, one that starts before this waits for more
        self._last_batch = 0
        self._queue: queue.SimpleQueue[_Item[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = self.units = 0  # counted by the committer thread; read for the log line at close

    def run(self, unit: Callable[[Transaction], T]) -> T:
        """Runs `unit(transaction)` in the next batch; returns its result once the batch is committed."""
        done = threading.Event()
        item: _Item[T] = _Item(unit, lambda _: done.set())
        self._put(item)
        done.wait()
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[return-value]

    async def submit(self, unit: Callable[[Transaction], T]) -> T:
        """`run` for the event loop: the loop goes on serving while the batch commits."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(item: _Item[T]) -> None:
            if future.cancelled():  # the request went away; what the unit wrote stays committed
                return
            if item.error is not None:
                future.set_exception(item.error)
            else:
                future.set_result(item.result)  # type: ignore[arg-type]

        def notify(item: _Item[T]) -> None:
            loop.call_soon_threadsafe(settle, item)

        self._put(_Item(unit, notify))
        # shielded: a client that hangs up must not cancel the wait for what is already being written
        return await asyncio.shield(future)

    @contextlib.contextmanager
    def expect(self) -> Iterator[None]:
        """Announces a unit on its way (a certificate being signed): a batch that has started waits up to
        `max_wait` for it, so concurrent requests share one commit instead of each paying its own."""
        self._expected += 1
        try:
            yield
        finally:
            self._expected -= 1

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None
            if self.units:
                log.info("group commit: %d units in %d batches", self.units, self.batches)

    def _put(self, item: _Item[Any]) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="pocketca-commit", daemon=True)
                    self._thread.start()
        self._queue.put(item)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch: list[_Item[Any]] = [first]
            stop = False
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    # wait while a unit is being prepared, or while batches have company and come back to back (then
                    # another unit is likely within max_wait); a lone client (batches of one) never waits
                    busy = self._last_batch > 1 and time.monotonic() < self._busy_until
                    if remaining <= 0 or (self._expected <= 0 and not busy):
                        break
                    try:
                        more = self._queue.get(timeout=remaining)
                    except queue.Empty:
                        break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._commit(batch)
            self._busy_until = time.monotonic() + 2 * self.max_wait
            self._last_batch = len(batch)
            if stop:
                return

    def _commit(self, batch: list[_Item[Any]]) -> None:
        metrics.batch(len(batch))
        self.batches += 1
        self.units += len(batch)
        try:
            # Optimistic first: the batch's units one after another, no savepoints. A unit rarely raises (a token
            # used up a moment ago, a replayed renewal token), and each statement the committer runs is a GIL
            # hand-off with the busy event loop (two savepoint statements per unit were a third of them). When
            # one does raise, the whole batch rolls back and runs again, each unit in its own savepoint, so that
            # one rolls back alone; a batch of one has nothing else to keep.
            transaction = self._run(batch, savepoints=False)
            if transaction is None and len(batch) > 1:
                for item in batch:
                    item.result = item.error = None
                transaction = self._run(batch, savepoints=True)
            for action in transaction.after_commit if transaction is not None else ():
                try:
                    action()
                except Exception:  # a log line that fails must not fail what is committed
                    log.exception("after-commit action failed")
        except Exception as exc:  # the commit itself failed: nothing in the batch is recorded
            log.exception("group commit of %d units failed", len(batch))
            for item in batch:
                if item.error is None:
                    item.error, item.result = exc, None
        finally:
            for item in batch:
                item.notify(item)

    def _run(self, batch: list[_Item[Any]], *, savepoints: bool) -> Transaction | None:
        """Runs the units and commits. Without savepoints, the first unit that raises rolls everything back:
        None, with that unit's error set (the others' results are void)."""
        try:
            with self.db.raw_transaction() as transaction:
                connection = transaction.connection
                for item in batch:
                    kept = len(transaction.after_commit)
                    if savepoints:
                        connection.execute("SAVEPOINT unit")
                    try:
                        item.result = item.context.run(item.unit, transaction)
                    except Exception as exc:  # this unit alone rolls back; its caller gets the error
                        item.error = exc
                        if not savepoints:
                            raise _UnitFailed from None  # the writer rolls the whole transaction back
                        connection.execute("ROLLBACK TO SAVEPOINT unit")
                        del transaction.after_commit[kept:]
                    if savepoints:
                        connection.execute("RELEASE SAVEPOINT unit")
        except _UnitFailed:
            return None
        return transaction


class _UnitFailed(Exception):
    """A unit raised in an optimistic batch (its error is on its item)."""
