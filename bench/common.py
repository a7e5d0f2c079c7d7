"""What every benchmark of bench/suite.py shares: the modes, the log, the processes the suite starts (each in its
own process group), waiting for them, and CPU accounting from /proc."""

from __future__ import annotations

import contextlib
import os
import resource
import shlex
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = Path(sys.executable).parent
LUA = BENCH / "issue.lua"
NGINX_TEMPLATE = BENCH / "nginx.conf.template"
WORKERS = 2
N_CSRS = 500
CLK_TCK = os.sysconf("SC_CLK_TCK")
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"  # as service/serving/contexts.py
CONCURRENCY = ((1, 1), (8, 2), (32, 2))  # (connections, wrk threads)
T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Mode:
    quick: bool
    runs: int
    issue_seconds: int
    warmup_seconds: int
    keepalive_seconds: float
    stime_seconds: int
    speed_seconds: int
    crypto_seconds: float
    startup_runs: int
    soft_limit: int  # extra start-up runs only while the suite is on time for this
    hard_limit: int  # then SIGALRM stops everything


FULL = Mode(
    False,
    runs=3,
    issue_seconds=10,
    warmup_seconds=1,
    keepalive_seconds=3.0,
    stime_seconds=4,
    speed_seconds=3,
    crypto_seconds=1.0,
    startup_runs=3,
    soft_limit=640,
    hard_limit=760,
)
QUICK = Mode(
    True,
    runs=1,
    issue_seconds=5,
    warmup_seconds=0,
    keepalive_seconds=2.0,
    stime_seconds=2,
    speed_seconds=1,
    crypto_seconds=0.3,
    startup_runs=1,
    soft_limit=110,
    hard_limit=170,
)


class HardTimeLimit(Exception):
    pass


COMMANDS: dict[str, str] = {}


def remember(kind: str, cmd: list[str], token: str | None = None) -> None:
    if kind not in COMMANDS:
        text = shlex.join(cmd)
        if token:
            text = text.replace(token, "$TOKEN")
        COMMANDS[kind] = text


# --- processes -------------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class Processes:
    """Everything the suite starts, each in its own session (process group), stopped in reverse order."""

    def __init__(self) -> None:
        self.started: list[Server] = []

    def start(self, name: str, cmd: list[str], log_path: Path, port: int, **kwargs: Any) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
        env["POCKETCA_HTTP_PORT"] = "0"  # the publication listener is not measured here; no fixed port to collide on
        with open(log_path, "ab") as out:
            process = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
                **kwargs,
            )
        server = Server(name, process, port, log_path)
        self.started.append(server)
        return server

    def stop(self, server: Server, timeout: float = 15.0) -> None:
        if server.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            try:
                server.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"{server.name} did not stop within {timeout:.0f} s: SIGKILL")
        # the workers too, whatever the parent did
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=5)
        if server in self.started:
            self.started.remove(server)

    def stop_all(self) -> None:
        for server in reversed(list(self.started)):
            self.stop(server, timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def insecure_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def https_status(port: int, path: str, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> int | None:
    """One GET over a fresh TLS connection; the status code, or None when nothing answers yet."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
            (context or insecure_context()).wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            head = tls.recv(64)
        if head.startswith(b"HTTP/1.1 "):
            return int(head[9:12])
    except (OSError, ValueError):
        return None
    return None


def wait_until(server: Server, ready: Callable[[], bool], timeout: float = 60.0, poll: float = 0.02) -> float:
    """Seconds until ready() (measured from now); raises when the process dies or the time runs out."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{server.log()[-3000:]}")
        if ready():
            return time.perf_counter() - start
        time.sleep(poll)
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f} s:\n{server.log()[-3000:]}")


def wait_workers(server: Server, workers: int, timeout: float = 60.0) -> None:
    wait_until(server, lambda: server.log().count("Application startup complete") >= workers, timeout, 0.05)


# --- CPU accounting ---------------------------------------------------------------------------------------


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime+stime+cutime+cstime in ticks) for every process."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                data = stat.read()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    return table


def tree_ticks(root: int) -> int:
    """CPU ticks of a process and all its live descendants (and the children they reaped)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1]
        todo.extend(children.get(pid, []))
    return total


def tree_pids(root: int) -> list[int]:
    table = _proc_table()
    return [pid for pid, (ppid, _) in table.items() if ppid == root]


def system_busy_ticks() -> int:
    with open("/proc/stat") as stat:
        values = [int(x) for x in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return values[0] + values[1] + values[2] + values[5] + values[6] + values[7]


def children_ticks() -> int:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((usage.ru_utime + usage.ru_stime) * CLK_TCK)


@dataclass
class CpuWindow:
    """Server CPU, load-generator CPU and everything else on the machine, over one measured run."""

    server_pid: int
    server: int = 0
    loadgen: int = 0
    busy: int = 0
    wall: float = 0.0

    def __enter__(self) -> CpuWindow:
        self._s, self._c, self._b, self._t = (
            tree_ticks(self.server_pid),
            children_ticks(),
            system_busy_ticks(),
            time.perf_counter(),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.server = tree_ticks(self.server_pid) - self._s
        self.loadgen = children_ticks() - self._c
        self.busy = system_busy_ticks() - self._b
        self.wall = time.perf_counter() - self._t

    @property
    def server_seconds(self) -> float:
        return self.server / CLK_TCK

    @property
    def other_cores(self) -> float:
        """Cores used by other processes on the machine during the run (noise)."""
        return max(0, self.busy - self.server - self.loadgen) / CLK_TCK / self.wall if self.wall else 0.0


def run(
    cmd: list[str], timeout: float = 60, kind: str | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    if kind:
        remember(kind, cmd)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def check_tools() -> None:
    missing = [
        t
        for t in ("wrk", "cfssl", "openssl", "nginx")
        if shutil.which(t) is None and not (t == "nginx" and Path("/usr/sbin/nginx").exists())
    ]
    if missing:
        raise SystemExit(f"missing tools: {', '.join(missing)}")
