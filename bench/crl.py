"""How fast, and how big, is the CRL with many revoked certificates? And how soon does a revocation show?

    .venv/bin/python -m bench.crl              # 10k, 100k and 1M revoked; openssl; a live server (~4 min)
    .venv/bin/python -m bench.crl --quick      # 10k and 100k only, one refresh at 100k (under a minute)
    .venv/bin/python bench/crl.py --sizes 250000 --no-server --no-openssl

For each size N the parent builds a fresh SQLite database by the real migrations (service.db.migrate.upgrade) and
fills it in one transaction with SQLAlchemy Core executemany: N revoked, unexpired synthetic certificates (random
159-bit serials as lower-case hex, whole-second revocation times in the last 60 days, reasons mixed with none at
all, a small constant DER), then sets the `revocations` counter to N. The same rows go to an OpenSSL index.txt.

A fresh child process (`--child`) then times what the service does: an Authority-free CRLPublisher over a
FileKeyStore with a P-256 CA, `refresh(wait=True)`, split into the snapshot read (query + entry objects), the
build (build_crl: RevokedCertificate objects, then cryptography's Rust encode + sign) and storing the DER; three
refreshes up to 100k (the median counts; a bumped counter makes each stale), one at 1M. Afterwards, for the
breakdown, the query alone, the read alone and the pure build_crl alone on the same entries. Peak memory is the
child's VmHWM after its first refresh (see memory_mib for why not ru_maxrss), also shown above its baseline
(imports, key, engine), so seeding never counts.

`openssl ca -gencrl` then signs the same entries with the same key (median of 3; at 1M one run first, the rest
skipped when it takes over 60 s). Last, a real `pocketca serve` with 100k revoked certificates: three certificates
issued by POST /csr, each revoked by POST /certs/{serial}/revoke, GET /crl polled every 50 ms (conditional on the
ETag) until the serial is listed; the median of the three is the revoke-to-served latency.

Progress goes to stderr, the markdown report to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import resource
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cryptography
from cryptography import x509
from cryptography.hazmat.backends.openssl import backend as openssl_backend
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import insert, text

import service.authority.crls as crls_module
from service.authority.crls import CRLPublisher
from service.ca.crl import RevokedEntry, build_crl, encode_revoked_entry
from service.ca.inspect import parse_serial
from service.ca.issue import build_ca_certificate
from service.ca.keys import dump_private_key, generate_private_key, load_private_key
from service.db import counters
from service.db.migrate import upgrade
from service.db.models import CertificateRecord
from service.db.repositories import REVOCATIONS, CertificateRepository
from service.db.session import Database
from service.keys.file_key import FileKeyStore

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
    "created_at",
    "der",
    "crl_entry",
)
STORED_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's SQLite dialect stores a DateTime; checked in seed()


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def stored_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime(STORED_TIME)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- seeding -----------------------------------------------------------------------------------------------------


def synthetic_rows(count: int, now: dt.datetime, rng: random.Random) -> Iterator[list[tuple[Any, ...]]]:
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
                issued_at,
                DER,
                encode_revoked_entry(serial, revoked_at, reason),  # as revoke() stores it
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


def seed(db: Database, count: int, now: dt.datetime, seed_value: int, index_txt: Path | None = None) -> None:
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
            for chunk in synthetic_rows(count, now, rng):
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


# --- the child: one size, one fresh process ----------------------------------------------------------------------


class TimedKeyStore(FileKeyStore):
    """The file key store, adding up how long it spent signing (for sign_crl: cryptography's Rust encode + sign)."""

    sign_s = 0.0

    def sign_crl(self, builder: x509.CertificateRevocationListBuilder) -> x509.CertificateRevocationList:
        started = time.perf_counter()
        try:
            return super().sign_crl(builder)
        finally:
            self.sign_s += time.perf_counter() - started

    if hasattr(FileKeyStore, "sign_crl_tbs"):  # should the service come to sign an assembled TBSCertList itself

        def sign_crl_tbs(self, tbs_certlist: bytes) -> bytes:
            started = time.perf_counter()
            try:
                return super().sign_crl_tbs(tbs_certlist)  # type: ignore[misc]
            finally:
                self.sign_s += time.perf_counter() - started


def memory_mib() -> dict[str, float]:
    """VmRSS and VmHWM (this process's peak) from /proc, plus ru_maxrss.

    ru_maxrss is not usable here: at execve Linux folds the pre-exec memory's high-water mark (the parent's, as
    the child was forked from it) into the process's ru_maxrss, so a child of a big parent starts out "big".
    VmHWM belongs to the memory map made by execve, so it counts only what this process touched.
    """
    values = {"ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # kB on Linux
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values


def read_entries(db: Database, now: dt.datetime) -> list[RevokedEntry]:
    """What CRLPublisher._build reads, the same way."""
    with db.reader() as session:
        return [
            RevokedEntry(parse_serial(serial), revoked_at, reason)
            for serial, revoked_at, reason in CertificateRepository(session).iter_revoked_unexpired(now)
        ]


def child(db_path: Path, ca_dir: Path, expected: int, runs: int) -> dict[str, Any]:
    key = load_private_key((ca_dir / "ca.key").read_bytes())
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    keystore = TimedKeyStore(key)
    db = Database(f"sqlite:///{db_path}")
    now = now_utc()
    publisher = CRLPublisher(db, keystore, ca_cert, lifetime=LIFETIME, clock=lambda: now)
    baseline = memory_mib()

    # refresh(wait=True) as the service runs it, with a stopwatch around the build (the rest is read and store)
    marks: dict[str, float] = {}
    builder_name = next(name for name in ("build_crl_der", "build_crl") if hasattr(crls_module, name))
    builder = getattr(crls_module, builder_name)

    def timed_builder(*args: Any, **kwargs: Any) -> Any:
        marks["build"] = time.perf_counter()
        try:
            return builder(*args, **kwargs)
        finally:
            marks["built"] = time.perf_counter()

    setattr(crls_module, builder_name, timed_builder)
    refreshes = []
    peak: dict[str, float] = {}
    for run in range(runs):
        if run:  # a revocation happened, as far as the publisher can tell: the next refresh rebuilds
            with db.transaction() as transaction:
                counters.increment(transaction, REVOCATIONS)
        keystore.sign_s = 0.0
        cpu = time.process_time()
        started = time.perf_counter()
        document = publisher.refresh(wait=True)
        total = time.perf_counter() - started
        cpu = time.process_time() - cpu
        assert document is not None, "the CRL was not stale"
        if run == 0:
            peak = memory_mib()  # the first build in a fresh process: what a worker pays
        refreshes.append(
            {
                "total_s": total,
                "cpu_s": cpu,
                "read_s": marks["build"] - started,
                "build_s": marks["built"] - marks["build"],
                "sign_s": keystore.sign_s,
                "store_s": started + total - marks["built"],
            }
        )
    setattr(crls_module, builder_name, builder)
    listed = len(x509.load_der_x509_crl(document.der))
    assert listed == expected, (listed, expected)

    # the same work in pieces, for the breakdown
    started = time.perf_counter()
    with db.reader() as session:
        rows = list(CertificateRepository(session).iter_revoked_unexpired(now))
    query_s = time.perf_counter() - started
    del rows
    started = time.perf_counter()
    entries = read_entries(db, now)
    read_s = time.perf_counter() - started
    keystore.sign_s = 0.0
    started = time.perf_counter()
    crl = build_crl(keystore, ca_cert, entries, number=document.number + 1, this_update=now, next_update=now + LIFETIME)
    build_s = time.perf_counter() - started
    assert abs(len(crl.public_bytes(Encoding.DER)) - len(document.der)) < 8  # the ECDSA signature's length varies
    db.dispose()
    return {
        "entries": expected,
        "builder": builder_name,
        "refreshes": refreshes,
        "alone": {"query_s": query_s, "read_s": read_s, "build_s": build_s, "sign_s": keystore.sign_s},
        "der_bytes": len(document.der),
        "baseline": baseline,
        "peak": peak,
    }


# --- openssl ca -gencrl --------------------------------------------------------------------------------------------

OPENSSL_CNF = """\
[ ca ]
default_ca = CA_default

[ CA_default ]
dir = {dir}
database = $dir/index.txt
certificate = $dir/ca.pem
private_key = $dir/ca.key
crlnumber = $dir/crlnumber
default_md = sha256
default_crl_days = 7
unique_subject = no
crl_extensions = crl_ext

[ crl_ext ]
authorityKeyIdentifier = keyid:always
"""


def openssl_gencrl(workdir: Path, expected: int, runs: int) -> tuple[list[float], str | None]:
    """Times `openssl ca -gencrl` on workdir's index.txt; stops early (with a note) when a run exceeds 60 s."""
    cnf = workdir / "openssl.cnf"
    cnf.write_text(OPENSSL_CNF.format(dir=workdir))
    (workdir / "crlnumber").write_text("01\n")
    samples: list[float] = []
    for _ in range(runs):
        command = ["openssl", "ca", "-gencrl", "-config", str(cnf), "-out", str(workdir / "crl.pem")]
        started = time.perf_counter()
        try:
            subprocess.run(command, check=True, capture_output=True, cwd=workdir, timeout=OPENSSL_SKIP_S)
        except subprocess.TimeoutExpired:
            return samples, f"> {OPENSSL_SKIP_S:.0f} s, skipped"
        samples.append(time.perf_counter() - started)
        if samples[-1] > OPENSSL_SKIP_S:
            return samples, f"{samples[-1]:.1f} s (> {OPENSSL_SKIP_S:.0f} s: one run only)"
    crl = x509.load_pem_x509_crl((workdir / "crl.pem").read_bytes())
    assert len(crl) == expected, (len(crl), expected)
    return samples, None


# --- revoke-to-served on a live server -----------------------------------------------------------------------------


@dataclass
class Served:
    seconds: float
    revoke_request_s: float
    polls: int
    crl_number: str


def live_server_latency(count: int, samples: int, seed_value: int) -> tuple[list[Served], list[str], float]:
    """(per revocation, the server's 'built CRL' log lines, seconds until the restarted server listed `count`)."""
    os.environ.pop("POCKETCA_TEST_DATABASE_URL", None)  # this measures the SQLite the data dir holds
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # `tests` is not installed; run as `python bench/crl.py` it is not on the path
    from tests.conftest import start_server
    from tests.helpers import csr_pem, p256

    tmp = Path(tempfile.mkdtemp(prefix="pocketca-bench-crl-serve-"))
    data_dir = tmp / "data"
    server = None
    built: list[str] = []
    try:
        log("serve: first start (makes the CA and schema), then stop")
        start_server(data_dir).stop()
        log(f"serve: seeding {count:,} revoked rows into {data_dir / 'pocketca.db'}")
        db = Database(f"sqlite:///{data_dir / 'pocketca.db'}")
        seed(db, count, now_utc(), seed_value)
        db.dispose()
        started = time.perf_counter()
        server = start_server(data_dir, timeout=180)
        headers = {"Authorization": f"Bearer {server.admin_token}"}
        with server.client() as http:
            while True:  # prepare() built it before serving; the first GET should already list them all
                listed = len(x509.load_der_x509_crl(http.get("/crl").raise_for_status().content))
                if listed >= count:
                    break
                time.sleep(POLL_S)
            ready_s = time.perf_counter() - started
            serials = []
            for i in range(samples):
                body = {"csr": csr_pem(p256(), f"revoke-{i}.bench.example").decode(), "profile": "client"}
                issued = http.post("/csr", json=body, headers=headers).raise_for_status().json()
                serials.append(issued["serial"])
            results = []
            for serial in serials:
                etag = http.get("/crl").headers["etag"]
                started = time.perf_counter()
                http.post(f"/certs/{serial}/revoke", json={"reason": "keyCompromise"}, headers=headers)
                revoke_request_s = time.perf_counter() - started
                polls = 0
                while True:
                    polls += 1
                    response = http.get("/crl", headers={"If-None-Match": etag})
                    if response.status_code == 200:
                        etag = response.headers["etag"]
                        crl = x509.load_der_x509_crl(response.content)
                        if crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None:
                            break
                    if time.perf_counter() - started > 60:
                        raise RuntimeError(f"{serial} not in the served CRL after 60 s")
                    time.sleep(POLL_S)
                results.append(Served(time.perf_counter() - started, revoke_request_s, polls, etag))
                log(f"serve: {serial} served after {results[-1].seconds * 1000:.0f} ms ({polls} polls)")
    finally:
        if server is not None:
            server.stop()
            built = [line for line in server.log().splitlines() if "built CRL" in line]
        shutil.rmtree(tmp, ignore_errors=True)
    return results, built, ready_s


# --- the run -------------------------------------------------------------------------------------------------------


@dataclass
class SizeResult:
    child: dict[str, Any]
    seed_s: float
    openssl: list[float]
    openssl_note: str | None

    @property
    def entries(self) -> int:
        return int(self.child["entries"])

    @property
    def refresh(self) -> dict[str, float]:
        """The run with the median total (the only run at 1M)."""
        runs = sorted(self.child["refreshes"], key=lambda r: r["total_s"])
        return runs[(len(runs) - 1) // 2]

    @property
    def peak_mib(self) -> float:
        return float(self.child["peak"]["VmHWM"])

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - float(self.child["baseline"]["VmHWM"])

    @property
    def openssl_s(self) -> float | None:
        return statistics.median(self.openssl) if self.openssl and self.openssl_note is None else None


def refresh_runs(count: int, quick: bool) -> int:
    """Three refreshes (the median counts) while they are cheap; one at 1M, and at 100k with --quick."""
    return 3 if count <= (10_000 if quick else 100_000) else 1


def run_size(count: int, ca_dir: Path, seed_value: int, *, with_openssl: bool, quick: bool) -> SizeResult:
    workdir = Path(tempfile.mkdtemp(prefix=f"pocketca-bench-crl-{count}-"))
    try:
        db_path = workdir / "bench.sqlite3"
        for name in ("ca.key", "ca.pem"):
            shutil.copy(ca_dir / name, workdir / name)
        log(f"{count:,}: seeding {db_path}")
        started = time.perf_counter()
        db = Database(f"sqlite:///{db_path}")
        upgrade(db)
        seed(db, count, now_utc(), seed_value, workdir / "index.txt" if with_openssl else None)
        db.dispose()
        seed_s = time.perf_counter() - started
        log(f"{count:,}: seeded in {seed_s:.1f} s; building in a fresh process")
        runs = refresh_runs(count, quick)
        command = [sys.executable, str(Path(__file__).resolve()), "--child", str(db_path), str(workdir), str(count)]
        done = subprocess.run([*command, str(runs)], check=True, stdout=subprocess.PIPE, cwd=ROOT, text=True)
        result = SizeResult(json.loads(done.stdout), seed_s, [], None)
        for r in result.child["refreshes"]:
            log(
                f"{count:,}: refresh {r['total_s']:.2f} s (read {r['read_s']:.2f}, build_crl {r['build_s']:.2f}, "
                f"store {r['store_s']:.2f})"
            )
        log(f"{count:,}: peak RSS {result.peak_mib:.0f} MiB (+{result.growth_mib:.0f} MiB)")
        if with_openssl:
            result.openssl, result.openssl_note = openssl_gencrl(workdir, count, OPENSSL_RUNS)
            log(f"{count:,}: openssl ca -gencrl {', '.join(f'{s:.2f}' for s in result.openssl)} s")
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def machine_info() -> list[str]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cli = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    return [
        f"nproc {len(os.sched_getaffinity(0))} ({model or platform.machine()}), {platform.platform()}",
        f"Python {platform.python_version()}, cryptography {cryptography.__version__} "
        f"({openssl_backend.openssl_version_text()}), SQLite {sqlite3.sqlite_version}",
        f"openssl CLI: {cli}",
    ]


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def mark(ok: bool) -> str:
    return "PASS" if ok else "**FAIL**"


def report(
    results: list[SizeResult], served: tuple[list[Served], list[str], float] | None, loads: list[str], args: Any
) -> None:
    builders = sorted({r.child["builder"] for r in results})
    print("## CRL build: `CRLPublisher.refresh(wait=True)`, a fresh process per size, SQLite, P-256 CA")
    print()
    print(
        f"| entries | build total s [CPU s] | of which DB read s | {'/'.join(builders)} s (of which signing) | store s "
        "| DER MB | peak RSS MiB (growth) | openssl ca -gencrl s | ratio ours/openssl |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for result in results:
        r, runs = result.refresh, len(result.child["refreshes"])
        total = f"{r['total_s']:.2f} [{r['cpu_s']:.2f}]" + (f" (median of {runs})" if runs > 1 else "")
        if (openssl_s := result.openssl_s) is not None:
            openssl_cell, ratio = f"{openssl_s:.2f}", f"{r['total_s'] / openssl_s:.2f}x"
        else:
            openssl_cell, ratio = result.openssl_note or "not run", "-"
        print(
            f"| {result.entries:,} | {total} | {r['read_s']:.2f} | {r['build_s']:.2f} ({r['sign_s']:.2f}) "
            f"| {r['store_s']:.2f} | {result.child['der_bytes'] / 1e6:.1f} "
            f"| {result.peak_mib:.0f} (+{result.growth_mib:.0f}) | {openssl_cell} | {ratio} |"
        )
    print()
    print(
        "Peak RSS is VmHWM after the first refresh; growth is over the child's baseline (imports, key, engine). "
        "Not ru_maxrss: at execve Linux carries the parent's high-water mark into it "
        f"({', '.join(format(r.child['peak']['ru_maxrss'], '.0f') for r in results)} MiB here)."
    )
    print(
        "CPU s is the child's process time during the refresh: wall time minus waiting for a CPU, which other "
        "processes on the machine take (see the load average below)."
    )
    print()
    print("The same work in pieces, after the refreshes, in the same process:")
    print()
    print(
        "| entries | seed s | query only s (rows as tuples) | DB read s (+ parse_serial, RevokedEntry) "
        "| build_crl alone s | of which Rust encode+sign s | Python part of build_crl s | µs/entry (read + build) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for result in results:
        a = result.child["alone"]
        per_entry = (a["read_s"] + a["build_s"]) / result.entries * 1e6
        print(
            f"| {result.entries:,} | {result.seed_s:.1f} | {a['query_s']:.2f} | {a['read_s']:.2f} "
            f"| {a['build_s']:.2f} | {a['sign_s']:.2f} | {a['build_s'] - a['sign_s']:.2f} | {per_entry:.1f} |"
        )
    print()
    print(
        "All refreshes: "
        + "; ".join(
            f"{r.entries:,}: {', '.join(format(x['total_s'], '.2f') for x in r.child['refreshes'])} s" for r in results
        )
    )
    print(
        "openssl samples: "
        + "; ".join(
            f"{r.entries:,}: {', '.join(f'{s:.2f}' for s in r.openssl) or '-'}"
            + (f" ({r.openssl_note})" if r.openssl_note else "")
            for r in results
        )
    )
    if served is not None:
        samples, built, ready_s = served
        median = statistics.median(s.seconds for s in samples)
        print()
        print(f"## Revoke-to-served with {SERVER_REVOKED:,} already revoked (`pocketca serve`, 1 worker, SQLite)")
        print()
        print(f"- the restarted server listed all {SERVER_REVOKED:,} in GET /crl {ready_s:.1f} s after it was started")
        print(
            f"- **median {median:.2f} s** over {len(samples)} revocations, from sending POST /certs/{{serial}}/revoke "
            "to a GET /crl that lists the serial: "
            + ", ".join(
                f"{s.seconds:.2f} s (POST {s.revoke_request_s * 1000:.0f} ms, {s.polls} polls, ETag {s.crl_number})"
                for s in samples
            )
        )
        print("- server log: " + "; ".join(re.sub(r"^\S+ \S+ INFO pocketca.crl ", "", line) for line in built))
    print()
    print("## Targets")
    print()
    by_size = {r.entries: r for r in results}
    if (big := by_size.get(1_000_000)) is not None:
        total = big.refresh["total_s"]
        cpu = big.refresh["cpu_s"]
        print(
            f"- 1M entries built in <= {TARGET_1M_S:.0f} s: {total:.2f} s ({cpu:.2f} s CPU) "
            f"— {mark(total <= TARGET_1M_S)}"
        )
        print(f"- 1M peak RSS <= 1 GiB: {big.peak_mib:.0f} MiB — {mark(big.peak_mib <= TARGET_1M_RSS_MIB)}")
    if served is not None:
        median = statistics.median(s.seconds for s in served[0])
        ok = median <= TARGET_SERVED_S
        print(f"- a revocation served within {TARGET_SERVED_S:.0f} s with 100k revoked: {median:.2f} s — {mark(ok)}")
    if (mid := by_size.get(100_000)) is not None and (openssl_s := mid.openssl_s) is not None:
        ratio = mid.refresh["total_s"] / openssl_s
        print(f"- 100k build <= 1.0x openssl ca -gencrl: {ratio:.2f}x — {mark(ratio <= TARGET_RATIO)}")
    print()
    print("## Machine")
    print()
    for line in machine_info():
        print(f"- {line}")
    print(f"- load average (1, 5, 15 min) at start: {loads[0]}; at end: {loads[-1]}")
    print()
    print(f"Command: `{shlex.join(sys.orig_argv)}` (cwd {Path.cwd()}), seed {args.seed}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k and 100k only")
    parser.add_argument("--sizes", type=int, nargs="+", help="revoked certificates per build (default 10k 100k 1M)")
    parser.add_argument("--no-openssl", action="store_true", help="skip `openssl ca -gencrl`")
    parser.add_argument("--no-server", action="store_true", help="skip the revoke-to-served measurement")
    parser.add_argument("--seed", type=int, default=20261126, help="random seed for the synthetic rows")
    parser.add_argument("--child", nargs=4, metavar=("DB", "CA_DIR", "N", "RUNS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        db_path, ca_dir, count, runs = args.child
        print(json.dumps(child(Path(db_path), Path(ca_dir), int(count), int(runs))))
        return 0
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    with_openssl = not args.no_openssl and shutil.which("openssl") is not None
    loads = [load_average()]

    ca_dir = Path(tempfile.mkdtemp(prefix="pocketca-bench-crl-ca-"))
    try:
        key = generate_private_key("p256")
        ca_cert = build_ca_certificate(key, "pocketca bench CA", now=now_utc(), lifetime=dt.timedelta(days=3650))
        (ca_dir / "ca.key").write_bytes(dump_private_key(key))
        (ca_dir / "ca.pem").write_bytes(ca_cert.public_bytes(Encoding.PEM))
        results = [
            run_size(count, ca_dir, args.seed + count, with_openssl=with_openssl, quick=args.quick) for count in sizes
        ]
    finally:
        shutil.rmtree(ca_dir, ignore_errors=True)
    served = None if args.no_server else live_server_latency(SERVER_REVOKED, SERVER_SAMPLES, args.seed)
    loads.append(load_average())
    report(results, served, loads, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
