"""bench/crl.py's data: the figures every part shares, and N revoked synthetic certificates seeded into a fresh
database (and the same entries into an OpenSSL index.txt)."""

from __future__ import annotations

import datetime as dt
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from service.ca.crl import encode_revoked_entry
from service.db.models import CertificateRecord
from service.db.session import Database

ROOT = Path(__file__).resolve().parents[1]
SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
SERVER_REVOKED = 100_000
SERVER_SAMPLES = 3
OPENSSL_RUNS = 3
OPENSSL_SKIP_S = 60.0
POLL_S = 0.05
CHUNK = 20_000
DER = bytes(range(64)) * 2  # 128 bytes: never read by the CRL
REASONS = (None, "keyCompromise", "superseded", "cessationOfOperation", "affiliationChanged")  # None: no reason
LIFETIME = dt.timedelta(days=7)
DAY = 86_400

TARGET_1M_S = 5.0
TARGET_1M_RSS_MIB = 1024.0
TARGET_SERVED_S = 2.0
TARGET_RATIO = 1.0

COLUMNS = (
    "serial",
    "cn",
    "subject",
    "sans",
    "profile",
    "not_before",
    "not_after",
    "status",
    "revoked_at",
    "revocation_reason",
    "fingerprint_sha256",
    "issued_by",
    "issued_via",
    "created_at",
    "der",
    "crl_entry",
    "issuer_id",
)
STORED_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's SQLite dialect stores a DateTime; checked in seed()


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def stored_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime(STORED_TIME)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- seeding -----------------------------------------------------------------------------------------------------


def synthetic_rows(
    count: int, now: dt.datetime, rng: random.Random, issuer: str | None = None
) -> Iterator[list[tuple[Any, ...]]]:
    """Chunks of revoked, unexpired rows in COLUMNS order, already in the form the column types bind.

    Times are whole seconds: issued 1..61 days ago, revoked since, expiring in 30..365 days.
    """
    epoch = now.replace(tzinfo=None)
    chunk: list[tuple[Any, ...]] = []
    for i in range(count):
        issued = DAY + int(rng.random() * 60 * DAY)  # seconds before now
        issued_at = stored_time_at(epoch, -issued)
        cn = f"revoked-{i % 5000:04d}.bench.example"
        serial = f"{rng.getrandbits(159) | 1:x}"
        revoked_at = stored_time_at(epoch, int(rng.random() * issued) - issued)
        reason = rng.choice(REASONS)
        chunk.append(
            (
                serial,
                cn,
                f"CN={cn}",
                f'["{cn}"]',
                "client",
                issued_at,
                stored_time_at(epoch, 30 * DAY + int(rng.random() * 335 * DAY)),
                "revoked",
                revoked_at,
                reason,
                f"{i:064x}",
                "token:bench",
                "token",
                issued_at,
                DER,
                encode_revoked_entry(serial, revoked_at, reason),  # as revoke() stores it
                issuer,  # None: one CA, every row is its own (the child's publisher has no issuer_id)
            )
        )
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def stored_time_at(epoch: dt.datetime, seconds: int) -> str:
    """stored_time(epoch + seconds) for a naive UTC epoch, without strftime (a third of the seeding time)."""
    return (epoch + dt.timedelta(seconds=seconds)).isoformat(" ", "microseconds")


def openssl_time(stored: str) -> str:
    """'2026-11-26 20:44:06.000000' -> '261126204406Z' (UTCTime, as index.txt spells it)."""
    return f"{stored[2:4]}{stored[5:7]}{stored[8:10]}{stored[11:13]}{stored[14:16]}{stored[17:19]}Z"


def openssl_line(row: tuple[Any, ...]) -> str:
    """`R <expiry> <revoked>[,reason] <SERIAL> unknown <subject>`: an entry of `openssl ca`'s index.txt."""
    serial = row[0].upper()
    serial = serial if len(serial) % 2 == 0 else "0" + serial
    reason = f",{row[9]}" if row[9] else ""  # no reason: no CRLReason extension, as build_crl does for unspecified
    return f"R\t{openssl_time(row[6])}\t{openssl_time(row[8])}{reason}\t{serial}\tunknown\t/CN=x\n"


def seed(
    db: Database,
    count: int,
    now: dt.datetime,
    seed_value: int,
    index_txt: Path | None = None,
    issuer: str | None = None,
) -> None:
    """One write transaction (BEGIN IMMEDIATE) of Core executemany, then `revocations` += count.

    The INSERT is SQLAlchemy's own, compiled from the table; the rows arrive already converted (text times, JSON),
    so first check the conversion is the one the column types would do.
    """
    table = CertificateRecord.__table__
    dialect = db.engine.dialect
    assert {c.name for c in table.columns} == {"id", *COLUMNS}, "the certificates table changed; update COLUMNS"
    to_stored = table.c.not_after.type.dialect_impl(dialect).bind_processor(dialect)
    assert to_stored is not None and to_stored(now) == stored_time(now), (to_stored and to_stored(now), now)
    assert stored_time_at(now.replace(tzinfo=None), 0) == stored_time(now)
    compiled = insert(table).compile(dialect=dialect, column_keys=list(COLUMNS))
    assert compiled.positiontup == list(COLUMNS), compiled.positiontup
    rng = random.Random(seed_value)
    index = open(index_txt, "w") if index_txt is not None else None  # noqa: SIM115 - closed below
    try:
        with db.engine.execution_options(pocketca_write=True).begin() as connection:
            connection.exec_driver_sql("PRAGMA cache_size = -262144")  # 256 MiB for this connection: index inserts
            for chunk in synthetic_rows(count, now, rng, issuer):
                connection.exec_driver_sql(compiled.string, chunk)
                if index is not None:
                    index.writelines(openssl_line(row) for row in chunk)
            updated = connection.execute(
                text("UPDATE counters SET value = value + :n WHERE name = 'revocations'"), {"n": count}
            )
            assert updated.rowcount == 1, "the migrations seed the revocations counter"
    finally:
        if index is not None:
            index.close()
    with db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
