"""How fast is `GET /certs` on a big table? Times db.certificates.page on N synthetic certificates in SQLite.

    .venv/bin/python -m bench.list_certs              # 1,000,000 rows
    .venv/bin/python -m bench.list_certs --quick      # 100,000 rows
    .venv/bin/python -m bench.list_certs --rows 250000 --analyze --sql "CREATE INDEX ..."

The database is built by the real migrations (service.db.migrate.upgrade), then filled in one transaction with
SQLAlchemy Core executemany: synthetic rows (random 40-hex serials, ~5,000 CNs, not_after spread over -30..+365
days from now, 5% revoked, a small constant DER), no signing. Each query runs once to warm up, then 7 times; the
table shows the median and p90, the rows returned and SQLite's EXPLAIN QUERY PLAN for the exact SQL and parameters
the repository sent. `--sql` runs extra statements (a candidate index, say) after seeding, to measure a change
without touching the migrations; `--analyze` runs ANALYZE first (the service itself never does); `--correlated`
makes not_after grow with the id, as it does when certificates are issued one after another. Progress goes to
stderr, the markdown report to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, select

from service.db import certificates as certificate_rows
from service.db.migrate import upgrade
from service.db.models import CertificateRecord
from service.db.session import Database

DEFAULT_ROWS = 1_000_000
QUICK_ROWS = 100_000
DISTINCT_CNS = 5_000
REVOKED_SHARE = 0.05
RUNS = 7
LIMIT = 100
WALK_PAGES = 50
CHUNK = 20_000
DER = bytes(range(64)) * 2  # 128 bytes: the size of the blob is all the queries could notice
REASONS = ("keyCompromise", "superseded", "cessationOfOperation", "affiliationChanged", "unspecified")


@dataclass
class Result:
    name: str
    samples_ms: list[float]
    rows: int
    plan: str

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p90(self) -> float:
        return statistics.quantiles(self.samples_ms, n=10, method="inclusive")[-1]


def cn_of(index: int) -> str:
    return f"host-{index:05d}.bench.example"


# --- seeding -----------------------------------------------------------------------------------------------------


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


def stored_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime(STORED_TIME)


def synthetic_rows(
    count: int, now: dt.datetime, rng: random.Random, *, correlated: bool = False, issuer: str | None = None
) -> Iterator[list[tuple[Any, ...]]]:
    """Chunks of tuples in COLUMNS order, already in the form the column types would bind (text times, JSON).

    not_after is uniform over -30..+365 days and independent of the id, unless `correlated`: then it grows with
    the id (plus up to a day of jitter), as when certificates of one validity are issued one after another.
    """
    cns = [cn_of(i) for i in range(DISTINCT_CNS)]
    subjects = {cn: f"CN={cn}" for cn in cns}
    sans = {cn: json.dumps([cn]) for cn in cns}
    chunk: list[tuple[Any, ...]] = []
    day = 86_400
    validity = dt.timedelta(days=90)
    span = 395 * day
    for i in range(count):
        cn = cns[rng.randrange(DISTINCT_CNS)]
        offset = span * i // count + rng.randrange(day) if correlated else rng.randrange(span)
        not_after = now + dt.timedelta(seconds=offset - 30 * day)
        not_before = stored_time(not_after - validity)
        revoked = rng.random() < REVOKED_SHARE
        chunk.append(
            (
                f"{rng.getrandbits(159):040x}",
                cn,
                subjects[cn],
                sans[cn],
                "server",
                not_before,
                stored_time(not_after),
                "revoked" if revoked else "valid",
                stored_time(min(now, not_after - validity + dt.timedelta(days=1))) if revoked else None,
                rng.choice(REASONS) if revoked else None,
                f"{rng.getrandbits(256):064x}",
                "token:bench",
                "token",
                not_before,
                DER,
                None,  # revoked rows' CRL entries do not matter to the listing queries
                issuer,
            )
        )
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def seed(
    db: Database,
    count: int,
    now: dt.datetime,
    seed_value: int,
    *,
    correlated: bool = False,
    issuer: str | None = None,
) -> None:
    """One write transaction (BEGIN IMMEDIATE, as the service writes) of Core executemany, CHUNK rows at a time.

    The INSERT is SQLAlchemy's own, compiled from the table; the rows skip the per-value type processing (a third
    of the time) by arriving already converted, so first make sure the conversion is the one the types would do.
    """
    table = CertificateRecord.__table__
    dialect = db.engine.dialect
    assert {c.name for c in table.columns} == {"id", *COLUMNS}, "the certificates table changed; update COLUMNS"
    to_stored = table.c.not_after.type.dialect_impl(dialect).bind_processor(dialect)
    to_json = table.c.sans.type.dialect_impl(dialect).bind_processor(dialect)
    assert to_stored is not None and to_stored(now) == stored_time(now), (to_stored and to_stored(now), now)
    assert to_json is not None and to_json(["a.example"]) == json.dumps(["a.example"])
    compiled = insert(table).compile(dialect=dialect, column_keys=list(COLUMNS))
    assert compiled.positiontup == list(COLUMNS), compiled.positiontup
    rng = random.Random(seed_value)
    with db.engine.execution_options(pocketca_write=True).begin() as connection:
        connection.exec_driver_sql("PRAGMA cache_size = -1048576")  # 1 GiB for this connection: index inserts
        for chunk in synthetic_rows(count, now, rng, correlated=correlated, issuer=issuer):
            connection.exec_driver_sql(compiled.string, chunk)
    with db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


# --- measuring ---------------------------------------------------------------------------------------------------


@contextmanager
def captured_sql(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """Every statement (and its parameters, as sent to the driver) executed inside the block."""
    seen: list[tuple[str, Any]] = []

    def listener(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)


def query_plan(db: Database, run: Callable[[], int]) -> str:
    """EXPLAIN QUERY PLAN of the SELECT(s) `run` sends, with the very SQL text and parameters it sent."""
    with captured_sql(db) as seen:
        run()
    selects = [(sql, params) for sql, params in seen if sql.lstrip().upper().startswith("SELECT")]
    assert selects, "the query sent no SELECT"
    sql, params = selects[0]
    with db.engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
    return "; ".join(row[3] for row in plan)


def measure(db: Database, name: str, run: Callable[[], int]) -> Result:
    plan = query_plan(db, run)
    rows = run()  # warm-up
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        rows = run()
        samples.append((time.perf_counter() - started) * 1000)
    result = Result(name, samples, rows, plan)
    print(f"  {name:<44} median {result.median:9.2f} ms  p90 {result.p90:9.2f} ms  rows {rows}", file=sys.stderr)
    return result


def page_runner(db: Database, **criteria: Any) -> Callable[[], int]:
    """One Authority.list_certificates-style page: db.certificates.page (a fresh reader session, the query, rows)."""

    def run() -> int:
        return len(certificate_rows.page(db, now=now_utc(), limit=LIMIT, **criteria))

    return run


def walk_runner(db: Database, pages: int) -> Callable[[], int]:
    """Follows the cursor (the last id shown) for `pages` pages, a fresh session per request as the API does."""

    def run() -> int:
        before_id: int | None = None
        total = 0
        for _ in range(pages):
            rows = certificate_rows.page(db, now=now_utc(), before_id=before_id, limit=LIMIT)
            if not rows:
                break
            total += len(rows)
            before_id = rows[-1].id
        return total

    return run


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- the run -----------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows to seed (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows")
    parser.add_argument("--seed", type=int, default=20261126, help="random seed for the synthetic rows")
    parser.add_argument("--analyze", action="store_true", help="run ANALYZE after seeding (the service never does)")
    parser.add_argument("--sql", action="append", default=[], help="extra SQL to run after seeding (repeatable)")
    parser.add_argument(
        "--correlated", action="store_true", help="not_after grows with the id (issued in order) instead of random"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database and print its path")
    args = parser.parse_args(argv)
    count = QUICK_ROWS if args.quick else args.rows
    if count < 10_000:
        parser.error("--rows must be at least 10,000")

    tmp = tempfile.mkdtemp(prefix="pocketca-bench-")
    path = Path(tmp) / "bench.sqlite3"
    url = f"sqlite:///{path}"
    try:
        return run(url, path, count, args)
    finally:
        if args.keep:
            print(f"\nkept {path}", file=sys.stderr)
        else:
            for leftover in Path(tmp).iterdir():
                leftover.unlink()
            os.rmdir(tmp)


def run(url: str, path: Path, count: int, args: argparse.Namespace) -> int:
    now = now_utc()
    print(f"seeding {count:,} rows into {path}", file=sys.stderr)
    writer = Database(url)
    upgrade(writer)
    started = time.perf_counter()
    seed(writer, count, now, args.seed, correlated=args.correlated)
    seed_s = time.perf_counter() - started
    extra_s = 0.0
    if args.analyze or args.sql:
        started = time.perf_counter()
        with writer.engine.execution_options(pocketca_write=True).begin() as connection:
            for sql in args.sql:
                connection.exec_driver_sql(sql)
            if args.analyze:
                connection.exec_driver_sql("ANALYZE")
        with writer.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        extra_s = time.perf_counter() - started
    writer.dispose()
    size = sum(p.stat().st_size for p in path.parent.iterdir())

    db = Database(url)  # a fresh engine: the service's own pragmas (default page cache), none of the seeding's
    try:
        with db.reader() as session:
            oldest, newest, stored = session.execute(
                select(func.min(CertificateRecord.id), func.max(CertificateRecord.id), func.count())
            ).one()
            # the stored times compare as the service's bound parameters do: a check that seeding wrote them right
            unexpired = session.scalar(select(func.count()).where(CertificateRecord.not_after > now))
            revoked = session.scalar(select(func.count()).where(CertificateRecord.status == "revoked"))
        assert stored == count, (stored, count)
        assert 0.85 < unexpired / count < 0.96, unexpired  # 365 of 395 days ≈ 92%
        assert 0.04 < revoked / count < 0.06, revoked
        with db.engine.connect() as connection:
            indexes = [
                f"{name}({', '.join(r[2] for r in connection.exec_driver_sql(f'PRAGMA index_info({name})'))})"
                for (name,) in connection.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'certificates' ORDER BY name"
                )
            ]

        deep = oldest + count // 100  # 1% of the table is older than this cursor
        soon = now + dt.timedelta(days=7)
        cn = cn_of(42)
        print(f"seeded in {seed_s:.1f} s; querying (median of {RUNS} after a warm-up)", file=sys.stderr)
        cases: list[tuple[str, Callable[[], int]]] = [
            ("no filter, first page", page_runner(db)),
            (
                f"no filter, walk {WALK_PAGES} pages by cursor (total; slow means > 50 ms a page)",
                walk_runner(db, WALK_PAGES),
            ),
            (f"cn={cn}", page_runner(db, cn=cn)),
            ("status=valid", page_runner(db, status="valid")),
            ("status=revoked", page_runner(db, status="revoked")),
            ("status=expired", page_runner(db, status="expired")),
            ("expires_before=now+7d", page_runner(db, expires_before=soon)),
            ("cn + status=valid", page_runner(db, cn=cn, status="valid")),
            ("cn + status=expired", page_runner(db, cn=cn, status="expired")),
            ("status=valid + expires_before=now+7d", page_runner(db, status="valid", expires_before=soon)),
        ]
        deep_cases: list[tuple[str, Callable[[], int]]] = [
            ("deep: no filter", page_runner(db, before_id=deep)),
            ("deep: cn", page_runner(db, before_id=deep, cn=cn)),
            ("deep: status=valid", page_runner(db, before_id=deep, status="valid")),
            ("deep: status=revoked", page_runner(db, before_id=deep, status="revoked")),
            ("deep: status=expired", page_runner(db, before_id=deep, status="expired")),
            ("deep: expires_before=now+7d", page_runner(db, before_id=deep, expires_before=soon)),
            ("deep: cn + status=valid", page_runner(db, before_id=deep, cn=cn, status="valid")),
        ]
        results = [measure(db, name, runner) for name, runner in cases + deep_cases]
    finally:
        db.dispose()

    print()
    print(
        f"pocketca `GET /certs` on SQLite {sqlite3.sqlite_version}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; {count:,} rows ({revoked:,} revoked, {count - unexpired:,} past not_after), "
        f"not_after {'growing with the id' if args.correlated else 'random, independent of the id'}, "
        f"limit={LIMIT}, deep cursor before_id={deep:,} (ids {oldest:,}..{newest:,})"
    )
    print()
    print(f"- seed: {seed_s:.1f} s ({count / seed_s:,.0f} rows/s), one transaction, Core executemany")
    if args.sql or args.analyze:
        print(f"- extra after seeding ({extra_s:.1f} s): {json.dumps(args.sql)}{' + ANALYZE' if args.analyze else ''}")
    print(f"- db size: {size / 2**20:,.1f} MiB")
    print(f"- indexes on certificates: {', '.join(indexes)}")
    print()
    print("| query | median ms | p90 ms | rows | plan |")
    print("|---|---:|---:|---:|---|")
    for r in results:
        per_page = r.median / WALK_PAGES if r.name.startswith("no filter, walk") else r.median
        flag = " **slow**" if per_page > 50 else ""
        print(f"| {r.name} | {r.median:.2f}{flag} | {r.p90:.2f} | {r.rows} | `{r.plan}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
