"""The CRL: built off the request path, stored in the database, so every worker and replica serves the same bytes.

A `CRLRefresher` thread in each worker polls two small rows; when a revocation happened since the newest CRL
or half its lifetime has passed, one builder (a database lock decides which) takes a consistent snapshot,
signs outside any transaction, and stores the result with the next CRL number. A burst of revocations between
two polls costs one build. Readers only ever fetch the newest stored CRL (cached per worker by number).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from cryptography import x509

from service.authority.values import CRLDocument
from service.ca.crl import build_crl_der, encode_revoked_entry
from service.ca.issue import Signer
from service.db import crls as crl_rows
from service.db.crls import CRLRow
from service.db.session import Database

DEFAULT_CRL_LIFETIME = dt.timedelta(days=7)
KEEP_CRLS = 10  # older CRLs are deleted: at 1M revoked each is ~50 MB
log = logging.getLogger("pocketca.crl")


class CRLPublisher:
    def __init__(
        self,
        db: Database,
        signer: Signer,
        issuer: x509.Certificate,
        *,
        lifetime: dt.timedelta,
        clock: Callable[[], dt.datetime],
        issuer_id: str | None = None,
    ) -> None:
        self.db = db
        self.signer = signer
        self.issuer = issuer
        self.issuer_id = issuer_id  # None: one CA, every row is its own (tests, benches)
        self.lifetime = lifetime
        self.clock = clock
        self.refreshed_in_background = False  # set by CRLRefresher; until then readers refresh first
        self._cached: CRLDocument | None = None
        self._cache_lock = threading.Lock()

    def current(self) -> CRLDocument:
        """The newest stored CRL. Never builds on the request path while a refresher runs."""
        if not self.refreshed_in_background:
            self.refresh()
        state = crl_rows.latest_state(self.db, self.issuer_id)
        if state is None:
            record = None
        else:
            cached = self._cached
            if cached is not None and cached.number == state[0]:
                return cached
            record = crl_rows.get(self.db, state[0])
        if record is None:  # nothing built yet (a fresh database): build the first one now
            self.refresh(wait=True)
            return self.current()
        document = _document(record)
        with self._cache_lock:
            if self._cached is None or self._cached.number < document.number:
                self._cached = document
        return document

    def is_stale(self) -> bool:
        state, revision, floor = crl_rows.state(self.db, self.issuer_id)  # one DB-API read, polled 4 times a second
        return state is None or self._stale(state, revision, floor)

    def refresh(self, *, wait: bool = False) -> CRLDocument | None:
        """Builds and stores a new CRL if the newest is stale and no one else is building; returns it."""
        if not self.is_stale():
            return None
        deadline = time.monotonic() + 60
        while True:
            with self.db.try_lock("crl") as acquired:
                if acquired:
                    return self._build()
            if not wait or time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def _build(self) -> CRLDocument | None:
        started = time.perf_counter()
        with crl_rows.snapshot(self.db, self.issuer_id) as snapshot:  # the revision first: the entries cover it
            state, revision, floor = snapshot.state, snapshot.revision, snapshot.floor
            if state is not None and not self._stale(state, revision, floor):
                return None  # someone built it while we waited for the lock
            now = self.clock()
            entries = [  # DER per entry: a Python RevokedCertificate each would cost 5x (see ca.crl)
                item if isinstance(item, bytes) else encode_revoked_entry(*item) for item in snapshot.entries(now)
            ]
        number = max((state[0] + 1) if state is not None else 1, floor)
        next_update = now + self.lifetime
        der = build_crl_der(self.signer, self.issuer, entries, number=number, this_update=now, next_update=next_update)
        built = CRLRow(number, now, next_update, revision, der, self.issuer_id)
        with self.db.transaction() as transaction:  # numbered past the newest of every issuer; old ones pruned
            record = crl_rows.store(transaction, built, keep=KEEP_CRLS)
        log.info(
            "built CRL %d with %d entries in %.0f ms", number, len(entries), (time.perf_counter() - started) * 1000
        )
        return _document(record)

    def _stale(self, state: tuple[int, dt.datetime, dt.datetime, int], revision: int, floor: int) -> bool:
        number, this_update, next_update, built_for = state
        if number < floor:  # a restore happened: publish past every number the old database may have used
            return True
        return built_for != revision or self.clock() >= this_update + (next_update - this_update) / 2


class CRLRefresher:
    """A daemon thread per worker that keeps the stored CRLs fresh (one per issuer that still has certificates)."""

    def __init__(self, publisher: CRLPublisher, *more: CRLPublisher, interval: float = 0.25) -> None:
        self.publisher = publisher
        self.publishers = (publisher, *more)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pocketca-crl", daemon=True)

    def start(self) -> None:
        for publisher in self.publishers:
            publisher.refreshed_in_background = True
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for publisher in self.publishers:
            publisher.refreshed_in_background = False

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for publisher in self.publishers:
                try:
                    publisher.refresh()
                except Exception:  # keep serving the last CRL; the next poll tries again
                    log.exception("CRL refresh failed")


def _document(record: CRLRow) -> CRLDocument:
    return CRLDocument(
        number=record.number, this_update=record.this_update, next_update=record.next_update, der=record.der
    )
