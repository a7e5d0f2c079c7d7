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

This file runs the sizes; the parts are modules of their own: bench/crl_seed.py (the shared figures and the
seeding), bench/crl_child.py (the timed child), bench/crl_peers.py (openssl and the live server) and
bench/crl_report.py (the report).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, bench/ is on the path instead

from cryptography.hazmat.primitives.serialization import Encoding

from bench.crl_child import child
from bench.crl_peers import live_server_latency, openssl_gencrl
from bench.crl_report import SizeResult, load_average, report
from bench.crl_seed import OPENSSL_RUNS, QUICK_SIZES, ROOT, SERVER_REVOKED, SERVER_SAMPLES, SIZES, log, now_utc, seed
from service.ca.issue import build_ca_certificate
from service.ca.keys import dump_private_key, generate_private_key
from service.db.migrate import upgrade
from service.db.session import Database


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
