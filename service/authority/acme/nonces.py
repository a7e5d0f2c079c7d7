"""ACME nonces (RFC 8555 §6.5) that cost no database write until they are spent, and are spent once.

A nonce is `expiry ‖ 12 random bytes ‖ HMAC-SHA256(key, both)[:16]`, in base64url: any worker or replica that
holds the key tells one it issued from one it did not, and an expired one from a live one, without the database.
So handing nonces out (`HEAD /acme/new-nonce`, `Replay-Nonce` on every answer) writes nothing.

Spending one writes its record (`acme_nonces`: the nonce and its expiry, the primary key making it once only, in
every worker and replica) in the first write transaction of the request that spends it, with the change the
request makes; a request that writes nothing, or is refused, spends it in a transaction of its own before it is
answered. A nonce already recorded is a replay: `badNonce`, and the request changes nothing. Records are deleted
once their nonce has expired, when it could not pass the check anyway.

The key is the `server_secrets` row `acme-nonce-key` (db.secrets), shared by everything on the database.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from service.authority.acme.problems import AcmeProblem
from service.db import nonces as spent_nonces
from service.db.secrets import shared_secret
from service.db.session import Database
from service.db.sql import DatabaseError as DatabaseError  # what a failing statement raises: the front door's 503
from service.db.sql import Transaction
from service.errors import ServiceError

NONCE_LIFETIME = dt.timedelta(hours=1)
KEY_NAME = "acme-nonce-key"
_EXPIRY, _RANDOM, _MAC = 5, 12, 16  # bytes: 5 bytes of seconds last until the year 36812
_SIZE = _EXPIRY + _RANDOM + _MAC
_DOMAIN = b"pocketca acme nonce\x00"
SWEEP_EVERY = 256  # spends between deletions of expired records (per worker)


def replayed() -> AcmeProblem:
    return AcmeProblem("badNonce", "the nonce is unknown, used or expired; retry with the Replay-Nonce given")


@dataclass(frozen=True)
class _Held:
    value: str
    expires_at: dt.datetime


class NonceStore:
    """Issues and checks nonces; holds the nonce of the request running in this thread until it is spent."""

    def __init__(self, db: Database, clock: Callable[[], dt.datetime]) -> None:
        self.db = db
        self.clock = clock
        self._key: bytes | None = None
        self._held = threading.local()
        self._spends = 0

    @property
    def needs_key(self) -> bool:
        return self._key is None

    def load_key(self) -> bytes:
        """Once per process: a read (and a write for the very first process on the database)."""
        if self._key is None:
            self._key = shared_secret(self.db, KEY_NAME)
        return self._key

    @property
    def key(self) -> bytes:
        return self._key if self._key is not None else self.load_key()

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self.key, _DOMAIN + body, hashlib.sha256).digest()[:_MAC]

    def issue(self) -> str:
        expires = int((self.clock() + NONCE_LIFETIME).timestamp())
        body = expires.to_bytes(_EXPIRY, "big") + secrets.token_bytes(_RANDOM)
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode()

    def expiry(self, value: str) -> dt.datetime | None:
        """When a nonce this service issued expires, if it has not yet; None for any other string. (Whether it
        was spent is for the spending to tell.)"""
        if len(value) != (_SIZE * 4 + 2) // 3 or not value.isascii():
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            return None
        body, mac = raw[:-_MAC], raw[-_MAC:]
        if len(raw) != _SIZE or not hmac.compare_digest(mac, self._mac(body)):
            return None
        expires_at = dt.datetime.fromtimestamp(int.from_bytes(body[:_EXPIRY], "big"), dt.UTC)
        return expires_at if expires_at > self.clock() else None

    # --- spending: the request's own transaction ---------------------------------------------------------------

    def accept(self, value: str) -> bool:
        """For jws.verify_request: a live nonce of ours becomes this request's, to be spent with it."""
        expires_at = self.expiry(value)
        if expires_at is None:
            return False
        self._held.nonce = _Held(value, expires_at)
        return True

    @contextmanager
    def spending(self) -> Iterator[None]:
        """Around one request (in the thread that runs it): whatever the request accepted and did not spend in a
        write of its own is spent before the answer leaves, a refusal's too. A replay turns the answer into
        badNonce."""
        self._held.nonce = None
        try:
            try:
                yield
            except (AcmeProblem, ServiceError):
                self.spend_now()
                raise
            self.spend_now()
        finally:
            self._held.nonce = None

    def held(self) -> _Held | None:
        held: _Held | None = getattr(self._held, "nonce", None)
        return held

    def spend_now(self) -> None:
        """Spends the held nonce in a transaction of its own (before a change the ACME writer does not make)."""
        held = self.held()
        if held is not None:
            with self.db.transaction() as transaction:
                self.spend(transaction, held)
            self._held.nonce = None

    def spend(self, transaction: Transaction, held: _Held) -> None:
        """Records the nonce as spent in the caller's write transaction; a replay is badNonce (and the nonce is
        no longer held: nothing more to spend)."""
        if not spent_nonces.spend(transaction, held.value, held.expires_at):
            self._held.nonce = None
            raise replayed()
        self._spends += 1
        if self._spends % SWEEP_EVERY == 0:
            spent_nonces.delete_expired(transaction, self.clock())

    def release(self) -> None:
        """The transaction that spent the held nonce committed."""
        self._held.nonce = None


class SpendingDatabase:
    """The database as the ACME resources use it: the first write transaction of a request spends its nonce,
    with the change it makes."""

    def __init__(self, db: Database, nonces: NonceStore) -> None:
        self.db = self.database = db  # reads need no nonce: they go to the database itself
        self.nonces = nonces

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        held = self.nonces.held()
        with self.db.transaction() as transaction:
            if held is not None:
                self.nonces.spend(transaction, held)
            yield transaction
        if held is not None:  # committed, so spent; had it rolled back, the nonce would still be held
            self.nonces.release()
