"""Worker processes forked from `serve` and their supervisor (multiprocessing's public API; uvicorn's own
supervisor spawns, and making it fork needs its private names).

Workers forked from a process that has imported the app already start in milliseconds; spawned, each would
import FastAPI, SQLAlchemy and cryptography again, most of a second apiece on the start-up path (bench/SPEED.md).
They also inherit the server's SSL context, and so its session-ticket keys (service.serving.contexts). Forking
is safe here: `serve` runs no thread of its own (bootstrap closed its database and committer before it) and
holds no connection a worker could share.

The supervisor restarts a worker that dies, stops when one fails to start (it would fail the same way again),
forwards SIGHUP to every worker (each reloads profiles.toml in place), and on SIGINT/SIGTERM stops them all
(each finishes its requests: uvicorn's graceful shutdown) and returns.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from uvicorn.config import STARTUP_FAILURE  # the exit code of a server that could not start

log = logging.getLogger("pocketca.workers")


_STOP = (signal.SIGINT, signal.SIGTERM)


def can_fork() -> bool:
    return threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()


class Supervisor:
    """Runs `target` (which serves until SIGINT/SIGTERM) in `count` forked processes."""

    def __init__(self, target: Callable[[], None], count: int) -> None:
        if not can_fork():
            raise RuntimeError("workers are forked: this platform cannot, or a thread is running")
        self.target = target
        self.count = count
        self.processes: list[BaseProcess] = []
        self.signals: list[int] = []
        self.stopping = False

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._queue) for sig in (*_STOP, signal.SIGHUP)}
        try:
            self._run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _queue(self, sig: int, _frame: object) -> None:
        self.signals.append(sig)

    def _run(self) -> None:
        # what is loaded now lives as long as the workers: out of the cyclic collector's sight (gc docs: call
        # freeze() before fork), so its collections walk only what requests make, and the pages stay shared
        gc.freeze()
        self.processes = [self._start() for _ in range(self.count)]
        while not self.stopping:
            multiprocessing.connection.wait([p.sentinel for p in self.processes], timeout=0.5)
            self._handle_signals()
            self._replace_dead()
        for process in self.processes:
            if process.exitcode is None and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        for process in self.processes:
            process.join()

    def _start(self) -> BaseProcess:
        process = multiprocessing.get_context("fork").Process(target=_worker, args=(self.target,), daemon=False)
        process.start()
        return process

    def _handle_signals(self) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            if sig == signal.SIGHUP:
                log.info("SIGHUP: asking %d workers to reload profiles.toml", len(self.processes))
                for process in self.processes:
                    if process.pid is not None:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(process.pid, signal.SIGHUP)
            else:
                log.info("%s: stopping the workers", signal.Signals(sig).name)
                self.stopping = True

    def _replace_dead(self) -> None:
        for index, process in enumerate(self.processes):
            if self.stopping or process.is_alive():
                continue
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                log.error("worker %s failed to start: stopping", process.pid)
                self.stopping = True
                return
            log.warning("worker %s died (exit code %s): starting another", process.pid, process.exitcode)
            self.processes[index] = self._start()


def _worker(target: Callable[[], None]) -> None:
    """In a forked worker: the supervisor's signal handlers are not this process's. Until the app takes SIGHUP
    over, it must not kill the worker; SIGINT/SIGTERM end `target` (uvicorn catches them while it serves, and
    raises them again once stopped: a no-op then, so the worker exits 0)."""
    signal.signal(signal.SIGHUP, lambda *_: log.info("SIGHUP while starting: profiles.toml is read at start anyway"))
    for sig in _STOP:
        signal.signal(sig, lambda *_: None)
    target()
