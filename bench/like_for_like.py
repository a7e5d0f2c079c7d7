"""`--like-for-like`: P-256 c=8, pocketca vs cfssl recording nothing vs cfssl with its SQLite certdb."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    BENCH,
    N_CSRS,
    ROOT,
    Mode,
    Processes,
    Server,
    check_tools,
    free_port,
    log,
    med,
    ratio,
    tree_pids,
)
from bench.issuance import CaSetup, IssueRun, Launched, finish_ca, issuance_run, write_bodies
from bench.pyspy import profile_worker
from bench.servers import make_csrs, pocketca_init, start_cfssl, start_pocketca

# cfssl's certdb schema for SQLite, written from its goose migrations (cloudflare/cfssl certdb/sqlite/migrations:
# 001_CreateCertificates.sql, then 002_AddMetadataToCertificates.sql's five added columns folded in).
CFSSL_CERTDB_SCHEMA = """
CREATE TABLE certificates (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  ca_label                 blob,
  status                   blob NOT NULL,
  reason                   int,
  expiry                   timestamp,
  revoked_at               timestamp,
  pem                      blob NOT NULL,
  issued_at                timestamp,
  not_before               timestamp,
  metadata                 text,
  sans                     text,
  common_name              text,
  PRIMARY KEY(serial_number, authority_key_identifier)
);
CREATE TABLE ocsp_responses (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  body                     blob NOT NULL,
  expiry                   timestamp,
  PRIMARY KEY(serial_number, authority_key_identifier),
  FOREIGN KEY(serial_number, authority_key_identifier) REFERENCES certificates(serial_number, authority_key_identifier)
);
"""
LIKE_CONNS, LIKE_THREADS = 8, 2


def make_certdb(work: Path, name: str) -> tuple[Path, Path]:
    """An empty cfssl certdb (SQLite file) and the `-db-config` file that points cfssl at it."""
    import sqlite3

    db = work / f"{name}.sqlite"
    with contextlib.closing(sqlite3.connect(db)) as connection:
        connection.executescript(CFSSL_CERTDB_SCHEMA)
        connection.commit()
    config = work / f"{name}-db.json"
    config.write_text(json.dumps({"driver": "sqlite3", "data_source": str(db)}))
    return db, config


def count_rows(db: Path, table: str) -> int:
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


@dataclass
class LikeForLike:
    ours: list[IssueRun]
    bare: list[IssueRun]  # cfssl recording nothing
    certdb: list[IssueRun]  # cfssl with its SQLite certdb
    ours_ok: int  # 2xx answers over every run of this section, warm-up included
    ours_rows: int  # certificates rows added meanwhile
    certdb_ok: int
    certdb_rows: int
    prefilled: int  # certificates already recorded in pocketca's database before the section
    seconds: int


def like_for_like_section(
    ca: CaSetup, certdb: Server, certdb_path: Path, mode: Mode, work: Path, spkis: list[bytes], prefilled: int = 0
) -> LikeForLike:
    """P-256 c=8: pocketca, cfssl recording nothing and cfssl with its certdb, in rotating order, `mode.runs`
    times; then the rows each database gained against the certificates each handed out."""
    samples = work / "samples"
    samples.mkdir(exist_ok=True)
    ours_db = ca.data_dir / "pocketca.db"
    ours_before = count_rows(ours_db, "certificates")
    seconds = mode.issue_seconds
    servers = {
        "ours": (ca.pocketca, "pocketca", f"https://127.0.0.1:{ca.pocketca.port}/csr", "bodies-pocketca", ca.token),
        "bare": (ca.cfssl, "cfssl", f"https://127.0.0.1:{ca.cfssl.port}/api/v1/cfssl/sign", "bodies-cfssl", None),
        "certdb": (certdb, "cfssl", f"https://127.0.0.1:{certdb.port}/api/v1/cfssl/sign", "bodies-cfssl", None),
    }
    results: dict[str, list[IssueRun]] = {k: [] for k in servers}
    ok = Counter[str]()

    def one(who: str, secs: int, tag: str) -> IssueRun:
        server, kind, url, bodies, token = servers[who]
        r = issuance_run(
            server,
            kind,
            url,
            LIKE_CONNS,
            LIKE_THREADS,
            secs,
            work / f"{bodies}.jsonl",
            token,
            samples,
            tag,
            spkis,
            ca.ca_pem,
        )
        ok[who] += r.ok
        return r

    for who in servers:
        one(who, 1, f"like-warm-{who}")
    order = list(servers)
    for r in range(mode.runs):
        for who in order[r % 3 :] + order[: r % 3]:
            result = one(who, seconds, f"like-r{r}-{who}")
            results[who].append(result)
            log(
                f"like for like run {r + 1} {who}: {result.rps:.0f} req/s cpu {result.cpu_ms_per_cert:.2f} ms/cert "
                f"errors {result.errors} checked {result.checked} bad {result.bad} "
                f"other load {result.other_cores:.2f} cores"
                + (f" [{result.error_sample[:200]}]" if result.error_sample else "")
            )
    return LikeForLike(
        results["ours"],
        results["bare"],
        results["certdb"],
        ok["ours"],
        count_rows(ours_db, "certificates") - ours_before,
        ok["certdb"],
        count_rows(certdb_path, "certificates"),
        prefilled,
        seconds,
    )


def like_for_like_report(lfl: LikeForLike) -> list[str]:
    def m(rs: list[IssueRun], attr: str) -> float:
        return med([getattr(x, attr) for x in rs])

    ours = m(lfl.ours, "rps")
    out = [
        "## Like for like: pocketca vs cfssl with its SQLite certdb (P-256 CA, c=8)\n",
        f"wrk, {lfl.seconds} s per run, {len(lfl.ours)} run(s) each in rotating order (medians), the same CSRs, TLS "
        "and load generator as above. `cfssl serve -db-config` gets a JSON config "
        '`{"driver":"sqlite3","data_source":...}` and a database this suite creates from cfssl\'s '
        "certdb/sqlite migrations (tables certificates and ocsp_responses): cfssl then inserts every certificate "
        "before it answers, as pocketca commits each certificate and its audit row before it answers."
        + (f" pocketca's database held {lfl.prefilled:,} certificates before the first run." if lfl.prefilled else "")
        + "\n",
        "| server | req/s | pocketca ÷ this | p50 / p99 ms | server CPU ms/cert | errors | checked (bad) | "
        "other load (cores) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, rs in (
        ("pocketca, 2 workers", lfl.ours),
        ("cfssl, recording nothing", lfl.bare),
        ("cfssl with its SQLite certdb", lfl.certdb),
    ):
        out.append(
            f"| {label} | {m(rs, 'rps'):.0f} | **{ratio(ours, m(rs, 'rps'))}** | {m(rs, 'p50_ms'):.1f} / "
            f"{m(rs, 'p99_ms'):.1f} | {m(rs, 'cpu_ms_per_cert'):.2f} | {sum(x.errors for x in rs)} | "
            f"{sum(x.checked for x in rs)} ({sum(x.bad for x in rs)}) | {med([x.other_cores for x in rs]):.2f} |"
        )
    out.append("")
    out.append(
        "Runs (req/s): "
        + "; ".join(
            f"{k} {' '.join(f'{x.rps:.0f}' for x in rs)}"
            for k, rs in (("pocketca", lfl.ours), ("cfssl", lfl.bare), ("cfssl+certdb", lfl.certdb))
        )
        + "\n"
    )
    out.append(
        f"Rows afterwards (warm-up included): pocketca handed out {lfl.ours_ok:,} certificates and its `certificates` "
        f"table gained {lfl.ours_rows:,} rows; cfssl with its certdb handed out {lfl.certdb_ok:,} and its "
        f"`certificates` table holds {lfl.certdb_rows:,} rows"
        + (
            " — every certificate recorded, by each."
            if lfl.ours_rows >= lfl.ours_ok and lfl.certdb_rows >= lfl.certdb_ok
            else " — **rows missing**."
        )
        + "\n"
    )
    return out


def like_for_like_targets(lfl: LikeForLike) -> list[tuple[str, str, bool]]:
    ours = med([x.rps for x in lfl.ours])
    r_db = ours / med([x.rps for x in lfl.certdb])
    r_bare = ours / med([x.rps for x in lfl.bare])
    cpu = med([x.cpu_ms_per_cert for x in lfl.ours])
    recorded = lfl.ours_rows >= lfl.ours_ok and lfl.certdb_rows >= lfl.certdb_ok
    return [
        ("issuance p256, c=8: >= 2.0x cfssl with its certdb", f"{r_db:.2f}x", r_db >= 2.0),
        ("issuance p256, c=8: >= 0.6x cfssl recording nothing", f"{r_bare:.2f}x", r_bare >= 0.6),
        ("server CPU per cert (p256, c=8) <= 1.0 ms", f"{cpu:.2f} ms", cpu <= 1.0),
        (
            "every certificate recorded (pocketca and cfssl+certdb)",
            f"{lfl.ours_rows}/{lfl.ours_ok}, {lfl.certdb_rows}/{lfl.certdb_ok}",
            recorded,
        ),
    ]


def prefill_pocketca(data_dir: Path, rows: int) -> None:
    """`pocketca init` (P-256), then `rows` synthetic certificates written as bench/list_certs.py writes them."""
    sys.path.insert(0, str(ROOT))
    from cryptography import x509

    from bench.list_certs import now_utc, seed
    from service.ca.issue import issuer_id
    from service.db.migrate import upgrade
    from service.db.session import Database

    pocketca_init(data_dir, "p256", data_dir.parent)
    db = Database(f"sqlite:///{data_dir / 'pocketca.db'}")
    upgrade(db)
    started = time.perf_counter()
    issuer = issuer_id(x509.load_pem_x509_certificate((data_dir / "ca.pem").read_bytes()))
    seed(db, rows, now_utc(), 16, issuer=issuer)  # rows of this CA, as issued (none to adopt at start-up)
    db.dispose()
    log(f"prefilled {rows:,} certificates in {time.perf_counter() - started:.0f} s")


def like_for_like_main(args: argparse.Namespace) -> None:
    """`--like-for-like`: only the P-256 c=8 three-way comparison (a few minutes)."""
    mode = Mode(
        True,
        runs=args.runs,
        issue_seconds=args.seconds,
        warmup_seconds=0,
        keepalive_seconds=0,
        stime_seconds=0,
        speed_seconds=0,
        crypto_seconds=0,
        startup_runs=0,
        soft_limit=0,
        hard_limit=0,
    )
    check_tools()
    work = Path(tempfile.mkdtemp(prefix="pocketca-bench-"))
    procs = Processes()
    started = time.monotonic()
    try:
        csr_pems, spkis = make_csrs(N_CSRS)
        write_bodies(work / "bodies-pocketca.jsonl", "csr", csr_pems)
        write_bodies(work / "bodies-cfssl.jsonl", "certificate_request", csr_pems)
        if args.prefill:
            prefill_pocketca(work / "ca-p256", args.prefill)
        ca, _ = finish_ca(
            procs,
            Launched(
                "p256",
                work / "ca-p256",
                start_pocketca(procs, work / "ca-p256", free_port(), work, "pocketca-p256"),
                time.perf_counter(),
            ),
            work,
        )
        db, config = make_certdb(work, "cfssl-certdb")
        certdb = start_cfssl(
            procs, ca.data_dir, work / "cfssl-p256-ca-key.pem", free_port(), work, "cfssl-certdb", config
        )
        if args.pause:
            log(f"pocketca pid {ca.pocketca.pid}; workers {tree_pids(ca.pocketca.pid)}; waiting {args.pause} s")
        lfl = like_for_like_section(ca, certdb, db, mode, work, spkis, args.prefill)
        lines = like_for_like_report(lfl)
        lines.append("| target | measured | verdict |\n|---|---|---|")
        lines += [f"| {t} | {v} | {'PASS' if ok else '**FAIL**'} |" for t, v, ok in like_for_like_targets(lfl)]
        if args.profile:  # after the counted runs, so py-spy's cost is in none of them
            spy = profile_worker(ca, work, spkis)
            lines.append(f"\npy-spy: {spy['total']} samples, {spy['rps']:.0f} req/s during the profile\n")
            lines += [f"    {share:6.1%} {frame}" for frame, share in spy["inclusive"]]
            lines.append("own:")
            lines += [f"    {share:6.1%} {frame}" for frame, share in spy["own"]]
            shutil.copy(work / "py-spy.txt", BENCH / "py-spy-like-for-like.txt")
        text = "\n".join(lines) + "\n"
        print(text)
        if args.output:
            args.output.write_text(text)
    finally:
        procs.stop_all()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        log(f"done in {time.monotonic() - started:.0f} s")
