"""pocketca against the tools people would pick instead, in one run on one machine (issue 5).

    .venv/bin/python bench/suite.py              # the whole suite, median of 3 runs per figure (< 10 min)
    .venv/bin/python bench/suite.py --quick      # one run per figure, shorter runs (< 2 min)
    .venv/bin/python bench/suite.py --profile    # also py-spy on a pocketca worker during an extra c=8 run
    .venv/bin/python bench/suite.py --like-for-like [--runs 3 --seconds 6 --prefill 1000000]
        # only P-256 c=8: pocketca vs cfssl recording nothing vs cfssl with its SQLite certdb (a few minutes)

Needs wrk, cfssl (Debian golang-cfssl 1.2), nginx and openssl on the PATH; everything listens on 127.0.0.1.
The markdown report goes to stdout and, on a full run, to bench/RESULTS.md (`--output` changes that); progress
goes to stderr. Every server runs in its own process group and is stopped (SIGTERM, then SIGKILL) when the suite
ends, also on errors and on the hard time limit.

Rows
1. Issuance: pocketca `POST /csr` (JSON body, admin bearer token, `--workers 2`, the per-token issuance limit
   off) vs `cfssl serve` `/api/v1/cfssl/sign`, both over TLS with pocketca's own server certificate and key, the
   same CA (pocketca's ca.key converted to traditional PEM for cfssl), the same 500 pre-generated P-256 CSRs
   (CN bench-N), the same wrk + bench/issue.lua; P-256 and RSA-2048 CAs; concurrency 1, 8, 32 (wrk -t1 -c1,
   -t2 -c8, -t2 -c32). Runs of pocketca and cfssl alternate. Server CPU is utime+stime of the server's whole
   process tree from /proc. A sample of the returned certificates (the first 30 and every 20th response per
   wrk thread) is checked: the CSR's public key, and verify_directly_issued_by(CA).
2. mTLS: GET /whoami keep-alive req/s with a client certificate (a small asyncio load generator,
   bench/whoami_load.py, 8 keep-alive connections) vs nginx (`ssl_verify_client on`, returns `$ssl_client_s_dn`) and
   vs bench/bare_app.py under uvicorn (same TLS settings, CERT_OPTIONAL, 2 workers, httptools). Handshakes:
   `openssl s_time -new` (full), `-new -www /whoami` (full, with the request) and `-reuse -www /whoami` (resumed;
   TLS 1.3 tickets arrive after the handshake, so s_time resumes only when it reads a response).
3. Start-up: `pocketca serve` on an empty data dir to the first 200 from /healthz, and a restart on that dir.
4. The limit: `openssl speed ecdsap256 rsa2048` sign/s (one core), cryptography's own cost to issue a leaf from
   a CSR with the CA key (parse + verify the CSR, build with the usual extensions, sign, PEM), and issuance
   req/s as a share of it.
The CRL row of issue 5 is bench/crl.py's (`.venv/bin/python -m bench.crl`).

This file only runs the suite; each row is a module of its own: bench/issuance.py (row 1, and the shared
issuance run), bench/like_for_like.py (`--like-for-like`), bench/whoami.py (row 2), bench/startup.py (row 3),
bench/limit.py (row 4), bench/pyspy.py (`--profile`), bench/report.py (the markdown and the verdicts), over
bench/common.py (modes, processes, CPU accounting) and bench/servers.py (starting each server).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, bench/ is on the path instead

from bench.common import BENCH, FULL, N_CSRS, QUICK, HardTimeLimit, Processes, check_tools, free_port, log
from bench.issuance import Pair, finish_ca, issuance_section, launch_ca, write_bodies
from bench.like_for_like import like_for_like_main, like_for_like_section, make_certdb
from bench.limit import cryptography_costs, openssl_speed
from bench.pyspy import profile_worker
from bench.report import machine, report
from bench.servers import make_csrs, start_cfssl, start_pocketca_ready
from bench.startup import startup_section
from bench.whoami import mtls_section

# --- main -------------------------------------------------------------------------------------------------


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@contextlib.contextmanager
def hard_limit(seconds: int) -> Iterator[None]:
    def expired(*_: object) -> None:
        raise HardTimeLimit(f"the suite ran over its hard limit of {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one run per figure, shorter runs (< 2 min)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy on a pocketca worker during an extra c=8 run (also with --like-for-like)",
    )
    parser.add_argument(
        "--output", type=Path, help="write the report here too (default: bench/RESULTS.md on full runs)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary work dir (logs, samples, data dirs)")
    parser.add_argument(
        "--like-for-like",
        action="store_true",
        help="only P-256 c=8: pocketca vs cfssl recording nothing vs cfssl with its SQLite certdb (a few minutes)",
    )
    parser.add_argument("--runs", type=int, default=3, help="--like-for-like: runs per server (default 3)")
    parser.add_argument("--seconds", type=int, default=6, help="--like-for-like: seconds per run (default 6)")
    parser.add_argument(
        "--prefill", type=int, default=0, help="--like-for-like: certificates recorded in pocketca's database first"
    )
    parser.add_argument("--pause", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.like_for_like:
        like_for_like_main(args)
        return
    mode = QUICK if args.quick else FULL
    output = args.output or (None if args.quick else BENCH / "RESULTS.md")
    check_tools()
    work = Path(tempfile.mkdtemp(prefix="pocketca-bench-"))
    procs = Processes()
    started, load_start = time.monotonic(), loadavg()
    log(f"work dir {work}; {'quick' if mode.quick else 'full'} mode")

    # SIGTERM/SIGINT to the suite: stop what it started
    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    try:
        with hard_limit(mode.hard_limit):
            csr_pems, spkis = make_csrs(N_CSRS)
            write_bodies(work / "bodies-pocketca.jsonl", "csr", csr_pems)
            write_bodies(work / "bodies-cfssl.jsonl", "certificate_request", csr_pems)
            log(f"{N_CSRS} P-256 CSRs made")
            pairs: list[Pair] = []
            spy: dict[str, Any] | None = None

            # --quick starts the RSA server alongside the first P-256 start (that start-up figure is then an
            # upper bound); a full run starts each alone
            rsa_launched = launch_ca(procs, "rsa2048", work) if mode.quick else None
            p256, first_start = finish_ca(procs, launch_ca(procs, "p256", work), work)
            log(f"start-up empty data dir run 1: {first_start:.2f} s")
            profile_fn = None
            if args.profile:

                def profile_fn() -> None:
                    nonlocal spy
                    spy = profile_worker(p256, work, spkis)
                    log(f"py-spy: {spy['total']} samples, {spy['rps']:.0f} req/s during the profile")

            pairs += issuance_section(p256, mode, work, spkis, profile_fn)
            certdb_path, certdb_config = make_certdb(work, "cfssl-certdb")
            certdb = start_cfssl(
                procs, p256.data_dir, work / "cfssl-p256-ca-key.pem", free_port(), work, "cfssl-certdb", certdb_config
            )
            lfl = like_for_like_section(p256, certdb, certdb_path, mode, work, spkis)
            procs.stop(certdb)
            procs.stop(p256.cfssl)
            procs.stop(p256.pocketca)
            # restart on the now well-filled data dir: start-up run 1 of the restart row; it serves the mTLS rows
            p256.pocketca, restart = start_pocketca_ready(
                procs, p256.data_dir, free_port(), work, "pocketca-p256-again"
            )
            log(f"start-up restart run 1: {restart:.2f} s")
            mtls = mtls_section(procs, p256, mode, work)
            procs.stop(p256.pocketca)

            rsa, _ = finish_ca(procs, rsa_launched or launch_ca(procs, "rsa2048", work), work)
            pairs += issuance_section(rsa, mode, work, spkis)
            procs.stop(rsa.cfssl)
            procs.stop(rsa.pocketca)

            log("openssl speed / cryptography")
            speed = openssl_speed(mode.speed_seconds)
            costs = {
                "p256": cryptography_costs(p256.data_dir, csr_pems, mode.crypto_seconds),
                "rsa2048": cryptography_costs(rsa.data_dir, csr_pems, mode.crypto_seconds),
            }
            log(f"openssl speed {speed}; cryptography {costs}")
            startup = startup_section(procs, mode, work, p256.data_dir, [first_start], [restart])
        text = report(
            mode,
            pairs,
            lfl,
            mtls,
            startup,
            speed,
            costs,
            spy,
            machine(),
            (load_start, loadavg()),
            time.monotonic() - started,
            sys.argv[1:],
        )
        print(text)
        if output:
            output.write_text(text)
            log(f"report written to {output}")
    finally:
        procs.stop_all()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        log(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
