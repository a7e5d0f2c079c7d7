"""`POST /csr` latency with and without 16 threads taking ACME nonces, in one run (issue 20 §5).

A real `pocketca serve` (SQLite, 2 workers, as the issue's report ran it) on 127.0.0.1. One client issues
certificates one after another (the admin token, P-256 CSRs made beforehand, a keep-alive connection) and times
each `POST /csr`. Rounds alternate: quiet, then with a second process whose 16 threads take nonces
(`HEAD /acme/new-nonce`, each on its keep-alive connection), then quiet... so drift on a shared machine hits both
alike. The threads take 480 nonces a second together by default: the rate the issue's 16 threads reached against
the code before (5,791 in 12 s), which is where its 5 → 29 ms were measured; `--rate 0` lets them take as many as
they can, and then they and the server share the machine's cores (CPU, not the database, is what is measured).
Reported: the median and p90 of each as the client saw them, the server's own median (the access log's `ms=`),
their ratios, the nonces taken a second, and the rows in `acme_nonces` before and after (handing nonces out
should write none).

    .venv/bin/python -m bench.nonces [--rounds 10 --per-round 80] [--rate 480] [--nice N] [--source DIR]
    .venv/bin/python -m bench.nonces --path /ca      # the control: the same rate of GET /ca instead

`--source DIR` runs the server from another checkout (e.g. `git archive 3828740 | tar -x -C /tmp/old`), with this
checkout's client: the same measurement of the code before.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from bench.acme import free_port
from service.ca.csr import build_csr

NONCE_THREADS = 16
NONCE_PATH = "/acme/new-nonce"


def _take_nonces(port: int, ca: str, stop: Any, counter: Any, nice: int, rate: float, path: str) -> None:
    """In its own process: 16 threads, each with a keep-alive TLS connection, taking nonces until told to stop, at
    `rate` a second together (0: as fast as they can). Plain sockets and `ssl`: a load generator that costs little
    CPU, as a client on another machine costs this one none. (`path` other than the nonce's: a GET of it, the
    control: the same rate of requests that write nothing and take no nonce.)"""
    if nice:
        os.nice(nice)
    context = ssl.create_default_context(cafile=ca)
    method = "HEAD" if path == NONCE_PATH else "GET"
    request = f"{method} {path} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode()

    def worker() -> None:
        taken = 0
        interval = NONCE_THREADS / rate if rate else 0.0  # each thread's share of the rate
        due = time.monotonic()
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            buffer = b""
            while not stop.is_set():
                tls.sendall(request)
                while b"\r\n\r\n" not in buffer:  # a HEAD answer has no body
                    chunk = tls.recv(65536)
                    if not chunk:
                        raise ConnectionError("the server closed the connection")
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                if method == "GET":  # the control's body, by its Content-Length
                    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                    while len(buffer) < length:
                        buffer += tls.recv(65536)
                    buffer = buffer[length:]
                if head.startswith(b"HTTP/1.1 200") and (method == "GET" or b"replay-nonce:" in head.lower()):
                    taken += 1
                if interval:
                    due += interval
                    time.sleep(max(0.0, due - time.monotonic()))
        with counter.get_lock():
            counter.value += taken

    threads = [threading.Thread(target=worker) for _ in range(NONCE_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _nonce_rows(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute("SELECT count(*) FROM acme_nonces").fetchone()[0])


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10, help="rounds in all, alternating quiet / under load (>= 2)")
    parser.add_argument("--per-round", type=int, default=80, help="POST /csr per round")
    parser.add_argument("--source", type=Path, help="run the server from this checkout (default: this one)")
    parser.add_argument("--nice", type=int, default=0, help="niceness of the nonce takers' process (0: as ours)")
    parser.add_argument(
        "--path", default=NONCE_PATH, help="what the 16 threads ask for (a GET of another path: the control)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=480,
        help="nonces a second the 16 threads aim at together (default: the issue's, 5,791 in 12 s; 0: no limit)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error("--rounds must be at least 2: one quiet, one under load")
    root = Path(tempfile.mkdtemp(prefix="pocketca-bench-nonces-"))
    port = free_port()
    data = root / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
    env.update({
        "POCKETCA_DATA_DIR": str(data), "POCKETCA_PORT": str(port), "POCKETCA_HTTP_PORT": "0",
        "POCKETCA_PUBLIC_URL": f"https://localhost:{port}", "POCKETCA_WORKERS": "2",
        "POCKETCA_ISSUE_RATE_PER_MINUTE": "0",
    })  # fmt: skip
    if args.source is not None:
        env["PYTHONPATH"] = str(args.source.resolve())
    log = open(root / "serve.log", "wb")  # noqa: SIM115 (closed below)
    serve = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"], env=env, stdout=log, stderr=log, start_new_session=True,
        cwd=args.source or None,
    )  # fmt: skip
    url, ca = f"https://localhost:{port}", str(data / "ca.pem")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if Path(ca).exists() and httpx.get(f"{url}/healthz", verify=ca, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or serve.poll() is not None:
                raise RuntimeError((root / "serve.log").read_text())
            time.sleep(0.2)
        token = (data / "admin.token").read_text().strip()
        total = args.rounds * args.per_round
        print(f"making {total} CSRs...", file=sys.stderr)
        csrs = [
            build_csr(ec.generate_private_key(ec.SECP256R1()), f"bench-{i}", [f"bench-{i}"]).public_bytes(Encoding.PEM)
            for i in range(total)
        ]
        with httpx.Client(base_url=url, verify=ca, timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
            http.get("/acme/directory")  # the ACME server is made on first use, in each worker
            for _ in range(20):
                http.head("/acme/new-nonce")
            rows_before = _nonce_rows(data / "pocketca.db")
            latencies: dict[str, list[float]] = {"quiet": [], "nonces": []}
            server_side: dict[str, list[float]] = {"quiet": [], "nonces": []}
            taken, loaded_seconds = 0, 0.0
            for round_ in range(args.rounds):
                loaded = round_ % 2 == 1
                stop, counter = multiprocessing.Event(), multiprocessing.Value("i", 0)
                taker = None
                if loaded:
                    taking = (port, ca, stop, counter, args.nice, args.rate, args.path)
                    taker = multiprocessing.Process(target=_take_nonces, args=taking)
                    taker.start()
                    time.sleep(1.0)  # its threads connected and taking
                started = time.monotonic()
                log_from = (root / "serve.log").stat().st_size
                for i in range(args.per_round):
                    csr = csrs[round_ * args.per_round + i]
                    t0 = time.perf_counter()
                    response = http.post("/csr", json={"csr": csr.decode()})
                    latencies["nonces" if loaded else "quiet"].append(time.perf_counter() - t0)
                    if response.status_code != 201:
                        raise RuntimeError(f"POST /csr: {response.status_code} {response.text[:300]}")
                with open(root / "serve.log", "rb") as lines:  # the access log's ms=: the server's own time
                    lines.seek(log_from)
                    logged = [float(m) for m in re.findall(rb"POST /csr 201 .*? ms=([0-9.]+)", lines.read())]
                server_side["nonces" if loaded else "quiet"].extend(ms / 1000 for ms in logged)
                if taker is not None:
                    loaded_seconds += time.monotonic() - started + 1.0
                    stop.set()
                    taker.join(timeout=60)
                    taken += counter.value
                print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
            rows_after = _nonce_rows(data / "pocketca.db")
        s50q, s50n = statistics.median(server_side["quiet"]) * 1000, statistics.median(server_side["nonces"]) * 1000
        quiet, loaded_ms = latencies["quiet"], latencies["nonces"]
        q50, n50 = statistics.median(quiet) * 1000, statistics.median(loaded_ms) * 1000
        q90, n90 = _percentile(quiet, 0.9) * 1000, _percentile(loaded_ms, 0.9) * 1000
        result = {
            "server": str(args.source or "this checkout"),
            "csr_per_phase": len(quiet),
            "quiet_p50_ms": round(q50, 2),
            "quiet_p90_ms": round(q90, 2),
            "nonces_p50_ms": round(n50, 2),
            "nonces_p90_ms": round(n90, 2),
            "p50_ratio": round(n50 / q50, 3),
            "p90_ratio": round(n90 / q90, 3),
            "server_side_p50_ms": [round(s50q, 2), round(s50n, 2)],
            "server_side_p50_ratio": round(s50n / s50q, 3),
            "nonces_taken": taken,
            "nonces_per_second": round(taken / loaded_seconds, 1) if loaded_seconds else 0,
            "acme_nonces_rows_before_after": [rows_before, rows_after],
        }
        print("| server | POST /csr p50 quiet / with 16 nonce threads (client) | p90 (client) | p50 ratio | "
              "server's own p50 (access log) | ratio | nonces/s | acme_nonces rows before → after |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        row = f"| {result['server']} | {q50:.1f} / {n50:.1f} ms | {q90:.1f} / {n90:.1f} ms | {n50 / q50:.2f}x | "
        row += f"{s50q:.1f} / {s50n:.1f} ms | {s50n / s50q:.2f}x | "
        print(row + f"{result['nonces_per_second']} | {rows_before} → {rows_after} |")
        print(json.dumps(result))
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        try:
            serve.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
