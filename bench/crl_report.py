"""bench/crl.py's results per size and its markdown report."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sqlite3
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cryptography
from cryptography.hazmat.backends.openssl import backend as openssl_backend

from bench.crl_peers import Served
from bench.crl_seed import SERVER_REVOKED, TARGET_1M_RSS_MIB, TARGET_1M_S, TARGET_RATIO, TARGET_SERVED_S


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
