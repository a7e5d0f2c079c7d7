"""Row 3: start-up, `pocketca serve` to its first 200 from /healthz, on an empty data dir and on a restart."""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import T0, Mode, Processes, free_port, https_status, log, wait_until
from bench.servers import start_pocketca


def time_start(procs: Processes, data_dir: Path, name: str) -> float:
    """Seconds from starting `pocketca serve` to its first 200 from /healthz; then a clean stop."""
    port = free_port()
    start = time.perf_counter()
    server = start_pocketca(procs, data_dir, port, data_dir.parent, name)
    try:
        wait_until(server, lambda: https_status(port, "/healthz", timeout=1.0) == 200, 60, 0.01)
        return time.perf_counter() - start
    finally:
        procs.stop(server)


def startup_section(
    procs: Processes, mode: Mode, work: Path, restart_dir: Path, first: list[float], again: list[float]
) -> tuple[list[float], list[float]]:
    """More start-up runs while the suite stays within its budget (run 1 of each came with the P-256 server):
    restarts first (they have a target), on the P-256 data dir again; then starts on fresh empty data dirs."""
    for label, times in (("restart", again), ("empty data dir", first)):
        while len(times) < mode.startup_runs:
            if time.monotonic() - T0 + max(times) + 3 > mode.soft_limit:
                log(f"start-up {label}: no run {len(times) + 1}, the suite's time budget is spent")
                break
            if label == "restart":
                times.append(time_start(procs, restart_dir, f"restart-{len(times)}"))
            else:
                data_dir = work / f"startup-{len(times)}" / "data"
                data_dir.parent.mkdir(parents=True)
                times.append(time_start(procs, data_dir, f"startup-{len(times)}"))
            log(f"start-up {label} run {len(times)}: {times[-1]:.2f} s")
    return first, again
