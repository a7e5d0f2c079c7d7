"""`--profile`: py-spy on one pocketca worker during an extra c=8 issuance run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import VENV_BIN, remember, tree_pids
from bench.issuance import CaSetup, issuance_run

IDLE_LEAVES = {
    "wait",
    "_recv",
    "_recv_bytes",
    "recv",
    "recv_into",
    "select",
    "poll",
    "sleep",
    "accept",
    "_wait_for_tstate_lock",
}


def profile_worker(ca: CaSetup, work: Path, spkis: list[bytes], seconds: int = 10) -> dict[str, Any]:
    """An extra c=8 issuance run (not counted in the table) with py-spy recording one worker for 8 s."""
    workers = [pid for pid in tree_pids(ca.pocketca.pid) if pid != ca.pocketca.pid]  # forked from `serve`
    if not workers:
        raise RuntimeError("no pocketca worker found")
    out = work / "py-spy.txt"
    cmd = [str(VENV_BIN / "py-spy"), "record", "-p", str(workers[0]), "-d", "8", "-o", str(out), "-f", "raw"]
    remember("py-spy", cmd)
    samples = work / "samples"
    url = f"https://127.0.0.1:{ca.pocketca.port}/csr"
    with open(work / "py-spy.log", "wb") as spy_log:
        spy = subprocess.Popen(cmd, stdout=spy_log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            result = issuance_run(
                ca.pocketca,
                "pocketca",
                url,
                8,
                2,
                seconds,
                work / "bodies-pocketca.jsonl",
                ca.token,
                samples,
                "profile",
                spkis,
                ca.ca_pem,
            )
            spy.wait(timeout=30)
        finally:
            if spy.poll() is None:
                os.killpg(spy.pid, signal.SIGKILL)
                spy.wait()
    summary = summarize_pyspy(out)
    summary["rps"] = result.rps
    summary["worker"] = workers[0]
    return summary


# frames every stack of a thread passes through: they would fill the top of the inclusive list with ~100%
PLUMBING = re.compile(
    r"\((<string>|threading\.py|multiprocessing/|asyncio/runners\.py|uvicorn/(server|_subprocess|_compat)\.py"
    r"|uvicorn/supervisors/)"
)


def summarize_pyspy(path: Path, top: int = 40) -> dict[str, Any]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        leaf = frames[-1].split(" (")[0].rsplit(".", 1)[-1]
        if leaf in IDLE_LEAVES:
            idle += count
            continue
        total += count
        for frame in set(frames):
            if not PLUMBING.search(frame):
                inclusive[frame] += count
            if "(service/" in frame:
                ours[frame] += count
        own[frames[-1]] += count
    return {
        "total": total,
        "idle": idle,
        "inclusive": [(frame, n / total) for frame, n in inclusive.most_common(top)] if total else [],
        "own": [(frame, n / total) for frame, n in own.most_common(25)] if total else [],
        "service": [(frame, n / total) for frame, n in ours.most_common(10)] if total else [],
    }
