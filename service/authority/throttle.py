"""Failed authentication per client address: counted, throttled, and audited in aggregate.

A bearer token or console login that names no one (an unknown token, a wrong secret, a malformed header:
InvalidCredentialsError; not a known token refused because it expired or is used up, which a retrying client
sends and the token's own audit records) opens a window for its address (IPv4: the address; IPv6: its /64, which
one holder usually has whole) of WINDOW seconds. Past LIMIT failures in the window, every bearer token and login
from that address is refused with 429 and `Retry-After` (the rest of the window) before the token is looked at.
When the window ends, it becomes ONE audit row (action `auth.failure`, actor `unauthenticated`, the address,
and in `detail` how many of each kind failed, how many were refused, and when): a guessing loop writes a row a
minute, not a row a guess. The counts live in each worker's memory, like the connection they arrive on: with W
workers an address gets at most W x LIMIT guesses a window. Failures are counted in /metrics as they happen.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from service import metrics
from service.authority.audit import Auditor
from service.errors import TooManyFailuresError

LIMIT: Final = 10  # failures per address per window (POCKETCA_AUTH_FAILURES_PER_MINUTE); the next is refused
WINDOW: Final = 60.0  # seconds
MAX_ADDRESSES: Final = 10_000  # windows kept at once; past it, new addresses share one ("many addresses")
FLUSH_INTERVAL: Final = 5.0  # how often ended windows are written

log = logging.getLogger("pocketca.throttle")


@dataclass
class _Window:
    address: str
    ends: float  # monotonic
    first_at: dt.datetime
    last_at: dt.datetime
    failures: Counter[str] = field(default_factory=Counter)
    refused: int = 0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def detail(self) -> str:
        kinds = ", ".join(f"{n} failed {kind}" for kind, n in sorted(self.failures.items()))
        when = f"from {_iso(self.first_at)} to {_iso(self.last_at)}"
        return f"{kinds} {when}; {self.refused} attempts refused (429)" if self.refused else f"{kinds} {when}"


class FailureThrottle:
    def __init__(
        self,
        audit: Auditor,
        clock: Callable[[], dt.datetime],
        *,
        limit: int = LIMIT,  # 0: count and audit, never refuse
        window: float = WINDOW,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.audit = audit
        self.clock = clock
        self.limit = limit
        self.window = window
        self.monotonic = monotonic
        self._windows: dict[str, _Window] = {}
        self._pending: list[_Window] = []  # windows that ended while counting, for the next flush to write
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self, address: str | None, kind: str) -> None:
        """Raises RateLimitedError (429) when the address used up its failures in its current window."""
        if not self._windows:  # nothing failed lately: the usual case, without the lock
            return
        now = self.monotonic()
        with self._lock:
            current = self._windows.get(_key(address))
            if current is None or current.ends <= now or not 0 < self.limit <= current.failed:
                return
            current.refused += 1
            retry = max(1, math.ceil(current.ends - now))
        metrics.auth_throttled(kind)
        raise TooManyFailuresError(retry)

    def failed(self, address: str | None, kind: str) -> None:
        """Counts one failure of `kind` (`bearer token`, `console login`) from the address."""
        metrics.auth_failure(kind)
        now, at = self.monotonic(), self.clock()
        key = _key(address)
        with self._lock:
            current = self._windows.get(key)
            if current is not None and current.ends <= now:  # its window ended: written, a new one begins
                self._pending.append(self._windows.pop(key))
                current = None
            if current is None:
                if len(self._windows) >= MAX_ADDRESSES:
                    key = "many addresses"
                    current = self._windows.get(key)
                if current is None:
                    current = self._windows[key] = _Window(key, now + self.window, at, at)
            current.failures[kind] += 1
            current.last_at = at

    def flush(self, *, everything: bool = False) -> int:
        """Writes each window that ended (all of them with `everything`) as one audit row; returns how many."""
        now = self.monotonic()
        with self._lock:
            done = [w for w in self._windows.values() if everything or w.ends <= now]
            for window in done:
                del self._windows[window.address]
            done += self._pending
            self._pending = []
        for window in done:
            try:
                self.audit.unattributed("auth.failure", window.address, window.detail())
            except Exception:  # the database is away: the counts are lost, never the request
                log.exception("could not write the audit of failed authentication from %s", window.address)
        return len(done)

    # --- the flusher: a daemon thread per worker --------------------------------------------------------------

    def start(self, interval: float = FLUSH_INTERVAL) -> None:
        def run() -> None:
            while not self._stop.wait(interval):
                self.flush()

        self._thread = threading.Thread(target=run, name="pocketca-throttle", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush(everything=True)


def _key(address: str | None) -> str:
    if address is None:
        return "-"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
