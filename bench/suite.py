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
2. mTLS: GET /whoami keep-alive req/s with a client certificate (a small asyncio load generator, this file with
   `_whoami_load`, 8 keep-alive connections) vs nginx (`ssl_verify_client on`, returns `$ssl_client_s_dn`) and
   vs bench/bare_app.py under uvicorn (same TLS settings, CERT_OPTIONAL, 2 workers, httptools). Handshakes:
   `openssl s_time -new` (full), `-new -www /whoami` (full, with the request) and `-reuse -www /whoami` (resumed;
   TLS 1.3 tickets arrive after the handshake, so s_time resumes only when it reads a response).
3. Start-up: `pocketca serve` on an empty data dir to the first 200 from /healthz, and a restart on that dir.
4. The limit: `openssl speed ecdsap256 rsa2048` sign/s (one core), cryptography's own cost to issue a leaf from
   a CSR with the CA key (parse + verify the CSR, build with the usual extensions, sign, PEM), and issuance
   req/s as a share of it.
The CRL row of issue 5 is bench/crl.py's (`.venv/bin/python -m bench.crl`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"  # as service/tls.py
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


# --- CSRs and CA material ---------------------------------------------------------------------------------


def make_csrs(count: int) -> tuple[list[str], list[bytes]]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    pems, spkis = [], []
    for n in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bench-{n}")]))
            .sign(key, hashes.SHA256())
        )
        pems.append(csr.public_bytes(serialization.Encoding.PEM).decode())
        spkis.append(
            key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    return pems, spkis


def run(
    cmd: list[str], timeout: float = 60, kind: str | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    if kind:
        remember(kind, cmd)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)


def pocketca_init(data_dir: Path, key_type: str, cwd: Path) -> None:
    result = run(
        [str(VENV_BIN / "pocketca"), "init", "--data-dir", str(data_dir), "--key-type", key_type],
        kind=f"init {key_type}",
        cwd=cwd,
    )
    if result.returncode != 0:
        raise RuntimeError(f"pocketca init failed: {result.stdout}{result.stderr}")


def cfssl_ca_key(data_dir: Path, key_type: str, out: Path) -> None:
    """pocketca's ca.key is PKCS#8; cfssl 1.2 gets the traditional (SEC1 / PKCS#1) PEM."""
    tool = ["openssl", "ec"] if key_type == "p256" else ["openssl", "rsa", "-traditional"]
    result = run([*tool, "-in", str(data_dir / "ca.key"), "-out", str(out)], kind=f"cfssl key {key_type}")
    if result.returncode != 0:
        raise RuntimeError(f"converting the CA key failed: {result.stderr}")
    out.chmod(0o600)


def start_pocketca(procs: Processes, data_dir: Path, port: int, cwd: Path, name: str = "pocketca") -> Server:
    cmd = [
        str(VENV_BIN / "pocketca"),
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
        "--issue-rate-per-minute",
        "0",
    ]
    remember("pocketca serve", cmd)
    return procs.start(name, cmd, cwd / f"{name}-{port}.log", port, cwd=cwd)


def start_pocketca_ready(procs: Processes, data_dir: Path, port: int, cwd: Path, name: str) -> tuple[Server, float]:
    """Started and healthy, with every worker up; also the seconds from the start to the first 200 /healthz."""
    start = time.perf_counter()
    server = start_pocketca(procs, data_dir, port, cwd, name)
    wait_until(server, lambda: https_status(port, "/healthz", timeout=1.0) == 200, 60, 0.01)
    seconds = time.perf_counter() - start
    wait_workers(server, WORKERS)
    return server, seconds


def start_cfssl(
    procs: Processes, data_dir: Path, ca_key: Path, port: int, cwd: Path, name: str, db_config: Path | None = None
) -> Server:
    cmd = [
        "cfssl",
        "serve",
        "-address",
        "127.0.0.1",
        "-port",
        str(port),
        "-ca",
        str(data_dir / "ca.pem"),
        "-ca-key",
        str(ca_key),
        "-tls-cert",
        str(data_dir / "server.pem"),
        "-tls-key",
        str(data_dir / "server.key"),
    ]
    if db_config is not None:
        cmd += ["-db-config", str(db_config)]
    remember("cfssl serve -db-config" if db_config else "cfssl serve", cmd)
    server = procs.start(name, cmd, cwd / f"{name}-{port}.log", port, cwd=cwd)
    wait_until(server, lambda: https_status(port, "/api/v1/cfssl/sign") is not None)
    return server


def start_nginx(procs: Processes, data_dir: Path, port: int, cwd: Path) -> Server:
    directory = cwd / "nginx"
    directory.mkdir(exist_ok=True)
    conf = NGINX_TEMPLATE.read_text()
    for name, value in {
        "@WORKERS@": str(WORKERS),
        "@DIR@": str(directory),
        "@PORT@": str(port),
        "@CERT@": str(data_dir / "server.pem"),
        "@KEY@": str(data_dir / "server.key"),
        "@CA@": str(data_dir / "ca.pem"),
    }.items():
        conf = conf.replace(name, value)
    (directory / "nginx.conf").write_text(conf)
    cmd = [shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(directory), "-c", str(directory / "nginx.conf")]
    remember("nginx", cmd)
    server = procs.start("nginx", cmd, directory / "nginx.out", port, cwd=cwd)
    wait_until(server, lambda: https_status(port, "/") is not None)  # 400: no client certificate
    return server


def start_bare(procs: Processes, data_dir: Path, port: int, cwd: Path) -> Server:
    cmd = [
        str(VENV_BIN / "uvicorn"),
        "bench.bare_app:app",
        "--app-dir",
        str(ROOT),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
        "--http",
        "httptools",
        "--ssl-certfile",
        str(data_dir / "server.pem"),
        "--ssl-keyfile",
        str(data_dir / "server.key"),
        "--ssl-ca-certs",
        str(data_dir / "ca.pem"),
        "--ssl-cert-reqs",
        str(int(ssl.CERT_OPTIONAL)),
        "--ssl-ciphers",
        TLS12_CIPHERS,
        "--no-access-log",
        "--no-server-header",
    ]
    remember("bare uvicorn", cmd)
    server = procs.start("bare-uvicorn", cmd, cwd / f"bare-{port}.log", port, cwd=cwd)
    wait_until(server, lambda: https_status(port, "/") == 200)
    wait_workers(server, WORKERS)
    return server


# --- issuance ---------------------------------------------------------------------------------------------


@dataclass
class IssueRun:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_cert: float
    errors: int
    checked: int
    bad: int
    other_cores: float
    requests: int
    error_sample: str = ""
    ok: int = 0  # 2xx answers: certificates handed out


def verify_samples(prefix: Path, kind: str, spkis: list[bytes], ca_pem: bytes) -> tuple[int, int, int, str]:
    """(checked, bad, non-2xx seen, first error body) over the bodies the Lua script sampled."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    ca = x509.load_pem_x509_certificate(ca_pem)
    checked = bad = non2xx = 0
    first_error = ""
    for path in sorted(prefix.parent.glob(prefix.name + "*.txt")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            end = data.index(b"\n", pos)
            status_text, length_text = data[pos:end].split()
            status, length = int(status_text), int(length_text)
            body = data[end + 1 : end + 1 + length]
            pos = end + 1 + length + 1
            if not 200 <= status <= 299:
                non2xx += 1
                first_error = first_error or f"{status} {body[:300].decode(errors='replace')}"
                continue
            checked += 1
            try:
                doc = json.loads(body)
                pem = doc["certificate"] if kind == "pocketca" else doc["result"]["certificate"]
                cert = x509.load_pem_x509_certificate(pem.encode())
                cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
                index = int(str(cn).removeprefix("bench-"))
                spki = cert.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                if spki != spkis[index]:
                    raise ValueError("public key differs from the CSR's")
                cert.verify_directly_issued_by(ca)
            except Exception as error:
                bad += 1
                first_error = first_error or f"bad certificate: {error!r}"
    return checked, bad, non2xx, first_error


def run_wrk(
    server: Server,
    url: str,
    conns: int,
    threads: int,
    seconds: int,
    bodies: Path,
    token: str | None,
    samples: Path,
    tag: str,
) -> dict[str, Any]:
    prefix = samples / f"{tag}-"
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{conns}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
        "--",
        str(bodies),
        str(prefix),
    ]
    if token:
        cmd.append(token)
    remember(f"wrk {server.name.split('-')[0]}", cmd, token)
    with CpuWindow(server.pid) as cpu:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    (samples / f"{tag}.wrk.txt").write_text(result.stdout + result.stderr)
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH-JSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout}{result.stderr}")
    figures: dict[str, Any] = json.loads(line.removeprefix("BENCH-JSON "))
    figures["cpu"] = cpu
    figures["prefix"] = prefix
    return figures


def issuance_run(
    server: Server,
    kind: str,
    url: str,
    conns: int,
    threads: int,
    seconds: int,
    bodies: Path,
    token: str | None,
    samples: Path,
    tag: str,
    spkis: list[bytes],
    ca_pem: bytes,
) -> IssueRun:
    f = run_wrk(server, url, conns, threads, seconds, bodies, token, samples, tag)
    checked, bad, _, first_error = verify_samples(f["prefix"], kind, spkis, ca_pem)
    socket_errors = f["connect_errors"] + f["read_errors"] + f["write_errors"] + f["timeouts"]
    requests = int(f["requests"])
    cpu: CpuWindow = f["cpu"]
    return IssueRun(
        rps=requests / (f["duration_us"] / 1e6),
        p50_ms=f["p50_us"] / 1000,
        p99_ms=f["p99_us"] / 1000,
        cpu_ms_per_cert=cpu.server_seconds * 1000 / max(1, requests - f["non2xx"]),
        errors=int(f["non2xx"]) + socket_errors,
        checked=checked,
        bad=bad,
        other_cores=cpu.other_cores,
        requests=requests,
        error_sample=first_error,
        ok=requests - int(f["non2xx"]),
    )


@dataclass
class Pair:
    ca: str
    conns: int
    ours: list[IssueRun] = field(default_factory=list)
    peer: list[IssueRun] = field(default_factory=list)


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def write_bodies(path: Path, key: str, pems: list[str]) -> None:
    path.write_text("".join(json.dumps({key: pem}) + "\n" for pem in pems))


@dataclass
class CaSetup:
    key_type: str
    data_dir: Path
    pocketca: Server
    cfssl: Server
    token: str
    ca_pem: bytes


@dataclass
class Launched:
    key_type: str
    data_dir: Path
    server: Server
    started: float


def launch_ca(procs: Processes, key_type: str, work: Path) -> Launched:
    """Starts pocketca for one CA. P-256 is serve's default, so that data dir starts empty (the time to its first
    healthy answer is start-up run 1); the RSA CA is made by `pocketca init` first."""
    data_dir = work / f"ca-{key_type}"
    if key_type != "p256":
        pocketca_init(data_dir, key_type, work)
    started = time.perf_counter()
    server = start_pocketca(procs, data_dir, free_port(), work, f"pocketca-{key_type}")
    return Launched(key_type, data_dir, server, started)


def finish_ca(procs: Processes, launched: Launched, work: Path) -> tuple[CaSetup, float]:
    """Waits until pocketca is healthy (seconds since its start) with every worker up, then starts cfssl."""
    ours, data_dir, key_type = launched.server, launched.data_dir, launched.key_type
    wait_until(ours, lambda: https_status(ours.port, "/healthz", timeout=1.0) == 200, 60, 0.01)
    seconds = time.perf_counter() - launched.started
    wait_workers(ours, WORKERS)
    ca_key = work / f"cfssl-{key_type}-ca-key.pem"
    cfssl_ca_key(data_dir, key_type, ca_key)
    peer = start_cfssl(procs, data_dir, ca_key, free_port(), work, f"cfssl-{key_type}")
    token = (data_dir / "admin.token").read_text().strip()
    return CaSetup(key_type, data_dir, ours, peer, token, (data_dir / "ca.pem").read_bytes()), seconds


def issuance_section(
    ca: CaSetup,
    mode: Mode,
    work: Path,
    spkis: list[bytes],
    profile: Callable[[], None] | None = None,
) -> list[Pair]:
    samples = work / "samples"
    samples.mkdir(exist_ok=True)
    ours_url = f"https://127.0.0.1:{ca.pocketca.port}/csr"
    peer_url = f"https://127.0.0.1:{ca.cfssl.port}/api/v1/cfssl/sign"
    ours_bodies, peer_bodies = work / "bodies-pocketca.jsonl", work / "bodies-cfssl.jsonl"

    def ours(conns: int, threads: int, seconds: int, tag: str) -> IssueRun:
        return issuance_run(
            ca.pocketca,
            "pocketca",
            ours_url,
            conns,
            threads,
            seconds,
            ours_bodies,
            ca.token,
            samples,
            tag,
            spkis,
            ca.ca_pem,
        )

    def peer(conns: int, threads: int, seconds: int, tag: str) -> IssueRun:
        return issuance_run(
            ca.cfssl, "cfssl", peer_url, conns, threads, seconds, peer_bodies, None, samples, tag, spkis, ca.ca_pem
        )

    if mode.warmup_seconds:
        log(f"{ca.key_type}: warm-up ({mode.warmup_seconds} s each)")
        ours(8, 2, mode.warmup_seconds, f"{ca.key_type}-warm-pocketca")
        peer(8, 2, mode.warmup_seconds, f"{ca.key_type}-warm-cfssl")
    pairs = []
    for conns, threads in CONCURRENCY:
        pair = Pair(ca.key_type, conns)
        for r in range(mode.runs):
            order = [("ours", ours), ("peer", peer)]
            if r % 2:
                order.reverse()
            for who, fn in order:
                result = fn(conns, threads, mode.issue_seconds, f"{ca.key_type}-c{conns}-r{r}-{who}")
                (pair.ours if who == "ours" else pair.peer).append(result)
                log(
                    f"{ca.key_type} c={conns} run {r + 1} {'pocketca' if who == 'ours' else 'cfssl'}: "
                    f"{result.rps:.0f} req/s p50 {result.p50_ms:.1f} ms p99 {result.p99_ms:.1f} ms "
                    f"cpu {result.cpu_ms_per_cert:.2f} ms/cert errors {result.errors} "
                    f"checked {result.checked} bad {result.bad} other load {result.other_cores:.2f} cores"
                    + (f" [{result.error_sample[:200]}]" if result.error_sample else "")
                )
        pairs.append(pair)
        if conns == 8 and profile is not None:
            profile()
    return pairs


# --- like for like: cfssl with its SQLite certdb -------------------------------------------------------------

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


# --- py-spy -----------------------------------------------------------------------------------------------

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


# --- mTLS -------------------------------------------------------------------------------------------------


def client_certificate(ca: CaSetup, work: Path) -> tuple[Path, Path]:
    """A client certificate issued by pocketca (so /whoami knows it), used against all three servers."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509 import CertificateSigningRequestBuilder, Name, NameAttribute
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        CertificateSigningRequestBuilder()
        .subject_name(Name([NameAttribute(NameOID.COMMON_NAME, "bench-client")]))
        .sign(key, hashes.SHA256())
    )
    context = ssl.create_default_context(cafile=str(ca.data_dir / "ca.pem"))
    connection = http.client.HTTPSConnection("127.0.0.1", ca.pocketca.port, context=context, timeout=30)
    body = json.dumps({"csr": csr.public_bytes(serialization.Encoding.PEM).decode(), "profile": "client"})
    connection.request(
        "POST", "/csr", body, {"Authorization": f"Bearer {ca.token}", "Content-Type": "application/json"}
    )
    response = connection.getresponse()
    data = response.read()
    connection.close()
    if response.status != 201:
        raise RuntimeError(f"client certificate: {response.status} {data[:300]!r}")
    cert_path, key_path = work / "client.pem", work / "client.key"
    cert_path.write_text(json.loads(data)["certificate"])
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


async def _whoami_load(port: int, path: str, seconds: float, conns: int, cert: str, key: str, ca: str) -> dict:
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[int, bytes]:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        if match is None:
            raise RuntimeError(f"no content-length: {head[:200]!r}")
        return status, await reader.readexactly(int(match.group(1)))

    connections = [
        await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1") for _ in range(conns)
    ]
    first = [await exchange(r, w) for r, w in connections]  # handshakes and a first request, before the clock
    deadline = time.perf_counter() + seconds

    async def loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[int, int, list[float]]:
        done = bad = 0
        latencies: list[float] = []
        clock = time.perf_counter
        while (start := clock()) < deadline:
            status, _ = await exchange(reader, writer)
            latencies.append(clock() - start)
            done += 1
            bad += status != 200
        return done, bad, latencies

    start = time.perf_counter()
    results = await asyncio.gather(*(loop(r, w) for r, w in connections))
    elapsed = time.perf_counter() - start
    for _, writer in connections:
        writer.close()
    latencies = sorted(x for _, _, lat in results for x in lat)
    requests = sum(done for done, _, _ in results)
    return {
        "requests": requests,
        "errors": sum(bad for _, bad, _ in results) + sum(status != 200 for status, _ in first),
        "seconds": elapsed,
        "rps": requests / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else 0,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0,
        "first_status": first[0][0],
        "first_body": first[0][1][:300].decode(errors="replace"),
    }


def whoami_load_main(argv: list[str]) -> None:
    port, path, seconds, conns, cert, key, ca = argv
    coroutine = _whoami_load(int(port), path, float(seconds), int(conns), cert, key, ca)
    try:
        import uvloop

        result = uvloop.run(coroutine)
    except ImportError:
        result = asyncio.run(coroutine)
    print(json.dumps(result))


@dataclass
class MtlsRun:
    rate: float
    cpu_us: float
    other_cores: float
    errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    reused: float | None = None
    detail: str = ""
    loadgen_cores: float = 0.0


def keepalive_run(server: Server, seconds: float, cert: Path, key: Path, ca: Path, conns: int = 8) -> MtlsRun:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "_whoami_load",
        str(server.port),
        "/whoami",
        str(seconds),
        str(conns),
        str(cert),
        str(key),
        str(ca),
    ]
    remember("whoami load", cmd)
    with CpuWindow(server.pid) as cpu:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"load generator failed: {result.stderr[-2000:]}")
    figures = json.loads(result.stdout)
    return MtlsRun(
        rate=figures["rps"],
        cpu_us=cpu.server_seconds * 1e6 / max(1, figures["requests"]),
        other_cores=cpu.other_cores,
        errors=figures["errors"],
        p50_ms=figures["p50_ms"],
        p99_ms=figures["p99_ms"],
        detail=f"{figures['first_status']} {figures['first_body'][:120]}",
        loadgen_cores=cpu.loadgen / CLK_TCK / cpu.wall,
    )


def stime_run(server: Server, seconds: int, cert: Path, key: Path, ca: Path, reuse: bool, www: bool = False) -> MtlsRun:
    cmd = ["openssl", "s_time", "-connect", f"127.0.0.1:{server.port}"]
    cmd += ["-reuse"] if reuse else ["-new"]
    cmd += ["-www", "/whoami"] if www or reuse else []
    cmd += ["-cert", str(cert), "-key", str(key), "-CAfile", str(ca), "-time", str(seconds)]
    remember("s_time reuse" if reuse else ("s_time new www" if www else "s_time new"), cmd)
    with CpuWindow(server.pid) as cpu:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    match = re.search(r"(\d+) connections in [\d.]+s", result.stdout)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"s_time failed ({result.returncode}): {result.stdout[-1000:]}{result.stderr[-1000:]}")
    connections = int(match.group(1))
    marks = "".join(line for line in result.stdout.splitlines() if re.fullmatch(r"[*r]+", line))
    return MtlsRun(
        rate=connections / cpu.wall,
        cpu_us=cpu.server_seconds * 1e6 / max(1, connections),
        other_cores=cpu.other_cores,
        reused=(marks.count("r") / len(marks)) if (reuse and marks) else None,
    )


def mtls_section(procs: Processes, ca: CaSetup, mode: Mode, work: Path) -> dict[str, dict[str, list[MtlsRun]]]:
    cert, key = client_certificate(ca, work)
    ca_file = ca.data_dir / "ca.pem"
    servers = {
        "pocketca": ca.pocketca,
        "nginx": start_nginx(procs, ca.data_dir, free_port(), work),
        "bare uvicorn": start_bare(procs, ca.data_dir, free_port(), work),
    }
    rows = ("keepalive", "full", "full_www", "reuse")
    results: dict[str, dict[str, list[MtlsRun]]] = {m: {s: [] for s in servers} for m in rows}
    try:
        for r in range(mode.runs):
            names = list(servers) if r % 2 == 0 else list(reversed(servers))
            for name in names:
                k = keepalive_run(servers[name], mode.keepalive_seconds, cert, key, ca_file)
                results["keepalive"][name].append(k)
                log(
                    f"whoami keep-alive {name} run {r + 1}: {k.rate:.0f} req/s p99 {k.p99_ms:.1f} ms errors {k.errors} "
                    f"server {k.cpu_us:.0f} us/req other load {k.other_cores:.2f}; first answer {k.detail[:80]}"
                )
            for row, reuse, www in (("full", False, False), ("full_www", False, True), ("reuse", True, True)):
                for name in names:
                    s = stime_run(servers[name], mode.stime_seconds, cert, key, ca_file, reuse, www)
                    results[row][name].append(s)
                    log(
                        f"s_time {row} {name} run {r + 1}: {s.rate:.0f} conn/s server "
                        f"{s.cpu_us:.0f} us/conn"
                        + (f" resumed {s.reused:.0%}" if s.reused is not None else "")
                        + f" other load {s.other_cores:.2f}"
                    )
    finally:
        procs.stop(servers["nginx"])
        procs.stop(servers["bare uvicorn"])
    return results


# --- start-up ---------------------------------------------------------------------------------------------


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


# --- the limit --------------------------------------------------------------------------------------------


def openssl_speed(seconds: int) -> dict[str, float]:
    cmd = ["openssl", "speed", "-seconds", str(seconds), "ecdsap256", "rsa2048"]
    result = run(cmd, timeout=seconds * 8 + 60, kind="openssl speed")
    out = result.stdout
    rsa = re.search(r"rsa 2048 bits\s+\S+\s+\S+\s+([\d.]+)", out)
    ec = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)", out)
    if not (rsa and ec):
        raise RuntimeError(f"openssl speed: {out}{result.stderr}")
    return {"rsa2048": float(rsa.group(1)), "p256": float(ec.group(1))}


def cryptography_costs(data_dir: Path, csr_pems: list[str], seconds: float) -> dict[str, float]:
    """CPU ms per raw signature and per leaf issued from a CSR, with this CA's key, in this process."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

    key = serialization.load_pem_private_key((data_dir / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((data_dir / "ca.pem").read_bytes())
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    base = "https://localhost:8443"
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    digest = b"\x01" * 32

    def sign_raw() -> None:
        if is_rsa:
            key.sign(digest, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg,union-attr]
        else:
            key.sign(digest, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg,union-attr]

    counter = iter(range(10**9))

    def issue_leaf() -> None:
        pem = csr_pems[next(counter) % len(csr_pems)]
        csr = x509.load_pem_x509_csr(pem.encode())
        if not csr.is_signature_valid:
            raise ValueError("bad CSR")
        public_key = csr.public_key()
        now = dt.datetime.now(dt.UTC)
        cn = csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        builder = x509.CertificateBuilder(
            issuer_name=ca.subject,
            subject_name=csr.subject,
            public_key=public_key,
            serial_number=secrets.randbits(159) | 1,
            not_valid_before=now - dt.timedelta(minutes=5),
            not_valid_after=now + dt.timedelta(days=90),
        )
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)  # type: ignore[arg-type]
            .add_extension(aki, critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(str(cn))]), critical=False)
            .add_extension(
                x509.CRLDistributionPoints(
                    [x509.DistributionPoint([x509.UniformResourceIdentifier(f"{base}/crl")], None, None, None)]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(f"{base}/ocsp")
                        ),
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(f"{base}/ca.crt")
                        ),
                    ]
                ),
                critical=False,
            )
        )
        cert = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
        cert.public_bytes(serialization.Encoding.PEM)

    def cpu_ms(fn: Callable[[], None]) -> float:
        for _ in range(20):
            fn()
        n, start, deadline = 0, time.process_time(), time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            for _ in range(10):
                fn()
            n += 10
        return (time.process_time() - start) * 1000 / n

    return {"sign_ms": cpu_ms(sign_raw), "leaf_ms": cpu_ms(issue_leaf)}


# --- the report -------------------------------------------------------------------------------------------


def version_of(cmd: list[str]) -> str:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (result.stdout + result.stderr).strip()
    return " ".join(line.strip() for line in text.splitlines()[:3] if line.strip() and not line.startswith("Usage"))


def machine() -> list[tuple[str, str]]:
    import cryptography
    import uvicorn
    from cryptography.hazmat.backends.openssl import backend

    def pkg(name: str) -> str:
        try:
            from importlib.metadata import version

            return version(name)
        except Exception:
            return "-"

    model = "?"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    fs = version_of(["df", "-T", tempfile.gettempdir()]).split()
    return [
        ("nproc", str(os.cpu_count())),
        ("CPU", model),
        ("kernel", platform.release()),
        ("python", platform.python_version()),
        ("cryptography", f"{cryptography.__version__} ({backend.openssl_version_text()})"),
        (
            "uvicorn",
            f"{uvicorn.__version__}, uvloop {pkg('uvloop')}, httptools {pkg('httptools')}, "
            f"fastapi {pkg('fastapi')}, starlette {pkg('starlette')}",
        ),
        ("openssl", version_of(["openssl", "version"])),
        ("cfssl", version_of(["cfssl", "version"])),
        ("nginx", version_of(["nginx", "-v"])),
        ("wrk", version_of(["wrk", "-v"]).split(" Copyright")[0]),
        ("work dir filesystem", f"{tempfile.gettempdir()} on {fs[-6] if len(fs) >= 6 else '?'}"),
    ]


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


CRL_NOTE = (
    "## CRL\n\nThe CRL row of issue 5 (build time for 10k / 100k / 1M revoked vs `openssl ca -gencrl` over the same "
    "entries) is bench/crl.py's: `.venv/bin/python -m bench.crl` (about 5 min) or `--quick`.\n"
)


def report(
    mode: Mode,
    pairs: list[Pair],
    lfl: LikeForLike,
    mtls: dict[str, dict[str, list[MtlsRun]]] | None,
    startup: tuple[list[float], list[float]],
    speed: dict[str, float],
    costs: dict[str, dict[str, float]],
    spy: dict[str, Any] | None,
    info: list[tuple[str, str]],
    loads: tuple[str, str],
    elapsed: float,
    argv: list[str],
) -> str:
    out: list[str] = []
    w = out.append
    runs = "median of 3 runs" if mode.runs == 3 else "one run each (--quick)"
    w("# pocketca benchmark results\n")
    w(
        f"Generated by `{shlex.join(['.venv/bin/python', 'bench/suite.py', *argv])}` on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC in {elapsed:.0f} s; {runs}. pocketca runs with "
        f"`--workers {WORKERS}` (nginx `worker_processes {WORKERS}`, bare uvicorn `--workers {WORKERS}`; cfssl is "
        "one Go process using both cores). Server and load generator share the machine's cores; everything on "
        "127.0.0.1. *other load* is CPU used by processes outside the server and the load generator during the "
        "run (this machine is shared): read the ratios, not the absolute figures, when it is high.\n"
    )
    w(f"Load average at start / end: {loads[0]} / {loads[1]}.\n")
    w("What each speed change gave, and what was tried and dropped: bench/SPEED.md.\n")

    w("## Issuance: `POST /csr` vs `cfssl serve` `/api/v1/cfssl/sign`\n")
    w(
        f"wrk, {mode.issue_seconds} s per run, the same 500 P-256 CSRs, both over TLS 1.3 with the same server key. "
        "Latency in ms; CPU = server process tree's utime+stime per certificate; errors = non-2xx + socket errors "
        "over all runs; checked = returned certificates verified (CSR key + chains to the CA) / bad.\n"
    )
    w(
        "| CA | c | pocketca req/s | cfssl req/s | ours/cfssl | pocketca p50 / p99 | cfssl p50 / p99 | "
        "p99 ours/cfssl | pocketca CPU ms/cert | cfssl CPU ms/cert | errors ours / cfssl | checked ours / cfssl (bad) "
        "| other load (cores) |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for p in pairs:
        o, c = p.ours, p.peer

        def m(rs: list[IssueRun], attr: str) -> float:
            return med([getattr(x, attr) for x in rs])

        bad = sum(x.bad for x in o + c)
        w(
            f"| {p.ca} | {p.conns} | {m(o, 'rps'):.0f} | {m(c, 'rps'):.0f} | **{ratio(m(o, 'rps'), m(c, 'rps'))}** | "
            f"{m(o, 'p50_ms'):.1f} / {m(o, 'p99_ms'):.1f} | {m(c, 'p50_ms'):.1f} / {m(c, 'p99_ms'):.1f} | "
            f"{ratio(m(o, 'p99_ms'), m(c, 'p99_ms'))} | "
            f"{m(o, 'cpu_ms_per_cert'):.2f} | {m(c, 'cpu_ms_per_cert'):.2f} | "
            f"{sum(x.errors for x in o)} / {sum(x.errors for x in c)} | "
            f"{sum(x.checked for x in o)} / {sum(x.checked for x in c)} ({bad}) | "
            f"{med([x.other_cores for x in o + c]):.2f} |"
        )
    w("")
    w(
        "Runs (req/s, pocketca | cfssl): "
        + "; ".join(
            f"{p.ca} c={p.conns}: {' '.join(f'{x.rps:.0f}' for x in p.ours)} | "
            f"{' '.join(f'{x.rps:.0f}' for x in p.peer)}"
            for p in pairs
        )
        + "\n"
    )
    samples = [x.error_sample for p in pairs for x in p.ours + p.peer if x.error_sample]
    if samples:
        w(f"First error seen: `{samples[0][:300]}`\n")
    out.extend(like_for_like_report(lfl))

    if mtls:
        w("## mTLS: pocketca vs nginx vs bare uvicorn\n")
        w(
            f"Keep-alive: `GET /whoami` with a client certificate on 8 keep-alive connections for "
            f"{mode.keepalive_seconds:.0f} s (asyncio + uvloop load generator, handshakes before the clock). "
            f"Handshakes: `openssl s_time` for {mode.stime_seconds} s, one connection at a time, rate = connections / "
            "wall time. Server CPU per request or connection in µs.\n"
        )
        w(
            "| row | pocketca | nginx | bare uvicorn | ours/nginx | ours/bare uvicorn "
            "| server µs: pocketca / nginx / bare | other load (cores) |"
        )
        w("|---|---|---|---|---|---|---|---|")
        labels = {
            "keepalive": "`/whoami` keep-alive req/s (c=8)",
            "full": "full handshakes/s (`-new`)",
            "full_www": "full handshakes + `GET /whoami`/s (`-new -www /whoami`)",
            "reuse": "resumed handshakes + `GET /whoami`/s (`-reuse -www /whoami`)",
        }
        for row, label in labels.items():
            med_rate = {s: med([x.rate for x in v]) for s, v in mtls[row].items()}
            cpu = {s: med([x.cpu_us for x in v]) for s, v in mtls[row].items()}
            other = med([x.other_cores for v in mtls[row].values() for x in v])
            w(
                f"| {label} | {med_rate['pocketca']:.0f} | {med_rate['nginx']:.0f} | {med_rate['bare uvicorn']:.0f} | "
                f"{ratio(med_rate['pocketca'], med_rate['nginx'])} | "
                f"**{ratio(med_rate['pocketca'], med_rate['bare uvicorn'])}** "
                f"| {cpu['pocketca']:.0f} / {cpu['nginx']:.0f} / {cpu['bare uvicorn']:.0f} | {other:.2f} |"
            )
        reuse_share = {s: med([x.reused or 0.0 for x in v]) for s, v in mtls["reuse"].items()}
        resumed_over_full = {
            s: med([x.rate for x in mtls["reuse"][s]]) / med([x.rate for x in mtls["full_www"][s]])
            for s in mtls["full"]
        }
        w(
            "| resumed / full (both with the request) | "
            + " | ".join(f"{resumed_over_full[s]:.2f}x" for s in ("pocketca", "nginx", "bare uvicorn"))
            + " | | | | |"
        )
        w(
            "| share of `-reuse` connections actually resumed | "
            + " | ".join(f"{reuse_share[s]:.0%}" for s in ("pocketca", "nginx", "bare uvicorn"))
            + " | | | | |"
        )
        keep = mtls["keepalive"]
        w("")
        w(
            "Keep-alive p50 / p99 ms: "
            + "; ".join(
                f"{s} {med([x.p50_ms for x in v]):.2f} / {med([x.p99_ms for x in v]):.2f}" for s, v in keep.items()
            )
            + ". Load generator CPU (cores): "
            + ", ".join(f"{s} {med([x.loadgen_cores for x in v]):.2f}" for s, v in keep.items())
            + " (near 1.0 the single-process load generator, not the server, is the limit)"
            + ". Errors (non-200): "
            + ", ".join(f"{s} {sum(x.errors for x in v)}" for s, v in keep.items())
            + "."
        )
        w("First answers: " + "; ".join(f"{s}: `{v[0].detail}`" for s, v in keep.items() if v) + "\n")
        w(
            "The resumed row reads one response per connection (`-www /whoami`): with TLS 1.3 the session ticket "
            "arrives after the handshake, and `s_time -reuse` without `-www` never resumes (every connection full). "
            "So resumed / full compares it with full handshakes that make the same request (`-new -www /whoami`). "
            "pocketca's workers share their ticket keys (service/tls.py), so a session resumes on either worker; "
            "bare uvicorn's do not, hence its share actually resumed.\n"
        )

    w("## Start-up\n")
    w(
        f"`pocketca serve --workers {WORKERS}` started to the first 200 from `GET /healthz` (polled every 10 ms "
        "over TLS), on an empty data dir (makes the CA, database, server certificate, admin token) and on an "
        "existing one after a clean stop. Run 1 of each is the P-256 server of the issuance rows: its first start, "
        "and its restart after the P-256 issuance runs (every certificate they issued is in its database). Further "
        "restarts reuse that data dir, further empty starts use fresh ones; they run only while the suite is within "
        "its time budget (restarts first), so a slow start-up means fewer runs."
        + (
            " With --quick the RSA server starts at the same time as the first P-256 start, so the empty-data-dir "
            "figure is an upper bound."
            if mode.quick
            else ""
        )
        + "\n"
    )
    w("| | median s | runs |")
    w("|---|---|---|")
    w(f"| empty data dir | {med(startup[0]):.2f} | {' '.join(f'{x:.2f}' for x in startup[0])} |")
    w(f"| restart (existing data dir) | {med(startup[1]):.2f} | {' '.join(f'{x:.2f}' for x in startup[1])} |")
    w("")

    w("## The limit: what signing costs\n")
    w(
        f"`openssl speed -seconds {mode.speed_seconds} ecdsap256 rsa2048` (one core). cryptography in-process, "
        "CPU time per operation: a raw SHA-256 signature with the CA key, and a whole leaf from a CSR (parse + "
        "verify the CSR, build with pocketca's extensions, sign, PEM). Issuance share = pocketca c=8 req/s over one "
        f"core's leaf rate (the server has {WORKERS} workers on {os.cpu_count()} cores, shared with wrk).\n"
    )
    w(
        "| CA | openssl sign/s | cryptography sign/s | cryptography leaf ms (leaf/s) | pocketca c=8 req/s | "
        "share of leaf/s | pocketca CPU ms/cert | CPU/cert ÷ leaf cost |"
    )
    w("|---|---|---|---|---|---|---|---|")
    for p in pairs:
        if p.conns != 8:
            continue
        c = costs[p.ca]
        rps = med([x.rps for x in p.ours])
        cpu = med([x.cpu_ms_per_cert for x in p.ours])
        w(
            f"| {p.ca} | {speed[p.ca if p.ca == 'p256' else 'rsa2048']:.0f} | {1000 / c['sign_ms']:.0f} | "
            f"{c['leaf_ms']:.3f} ({1000 / c['leaf_ms']:.0f}) | {rps:.0f} | {rps / (1000 / c['leaf_ms']):.0%} | "
            f"{cpu:.2f} | {cpu / c['leaf_ms']:.1f}x |"
        )
    w("")

    if spy:
        w("## Profile: py-spy on one pocketca worker, c=8, P-256 CA\n")
        w(
            f"An extra 10 s c=8 run ({spy['rps']:.0f} req/s, not counted above), `py-spy record -d 8 -f raw` on worker "
            f"pid {spy['worker']}: {spy['total']} samples, {spy['idle']} idle ones dropped (stacks whose leaf waits: "
            f"{', '.join(sorted(IDLE_LEAVES))}). Top frames by inclusive share of the non-idle samples (line numbers "
            "merged; process and thread start-up frames that every stack passes through, such as spawn_main, "
            "Thread.run, asyncio.run and uvicorn's Server.run, left out):\n"
        )
        w("| # | frame | inclusive |")
        w("|---|---|---|")
        for i, (frame, share) in enumerate(spy["inclusive"], 1):
            w(f"| {i} | `{frame}` | {share:.1%} |")
        w(
            "\npocketca's own frames (`service/`) by inclusive share: "
            + "; ".join(f"`{f}` {s:.1%}" for f, s in spy["service"])
            + ".\n"
        )
        w(
            "Top leaf frames (self time; `Runner.run` as a leaf is uvloop's native event loop: socket I/O and TLS "
            "in C): " + "; ".join(f"`{f}` {s:.1%}" for f, s in spy["own"]) + "\n"
        )

    w(CRL_NOTE)
    w("## Targets (issues 5 and 16)\n")
    targets = evaluate(pairs, mtls, startup, costs) + like_for_like_targets(lfl)
    w("| target | measured | verdict |")
    w("|---|---|---|")
    for name, measured, ok in targets:
        w(f"| {name} | {measured} | {'PASS' if ok else '**FAIL**'} |")
    w("")

    w("## Machine\n")
    w("| | |")
    w("|---|---|")
    for k, v in info:
        w(f"| {k} | {v} |")
    w("")
    w("## Commands\n")
    w(
        "Run everything: `.venv/bin/python bench/suite.py` (full, < 10 min) or `--quick` (~2 min); `--profile` adds "
        "the py-spy run. What the suite ran (first instance of each; ports and temp paths vary, `$TOKEN` is "
        "`<data dir>/admin.token`):\n"
    )
    w("```sh")
    for kind, cmd in COMMANDS.items():
        w(f"# {kind}")
        w(cmd)
    w("```")
    return "\n".join(out) + "\n"


def evaluate(
    pairs: list[Pair],
    mtls: dict[str, dict[str, list[MtlsRun]]] | None,
    startup: tuple[list[float], list[float]],
    costs: dict[str, dict[str, float]],
) -> list[tuple[str, str, bool]]:
    def pair(ca: str, conns: int) -> Pair:
        return next(p for p in pairs if p.ca == ca and p.conns == conns)

    out = []
    for ca, goal in (("p256", 1.0), ("rsa2048", 1.5)):
        p = pair(ca, 8)
        r = med([x.rps for x in p.ours]) / med([x.rps for x in p.peer])
        out.append((f"issuance {ca} CA, c=8: >= {goal}x CFSSL", f"{r:.2f}x", r >= goal))
    for ca in ("p256", "rsa2048"):
        p = pair(ca, 8)
        r = med([x.cpu_ms_per_cert for x in p.ours]) / costs[ca]["leaf_ms"]
        out.append((f"server CPU per cert ({ca}, c=8) <= 2x cryptography's own", f"{r:.1f}x", r <= 2.0))
    for ca in ("p256", "rsa2048"):
        p = pair(ca, 32)
        ours, peer = med([x.p99_ms for x in p.ours]), med([x.p99_ms for x in p.peer])
        out.append((f"p99 at c=32 ({ca}) <= CFSSL's", f"{ours:.1f} ms vs {peer:.1f} ms", ours <= peer))
    if mtls:

        def rate(row: str, server: str) -> float:
            return med([x.rate for x in mtls[row][server]])

        r = rate("keepalive", "pocketca") / rate("keepalive", "bare uvicorn")
        out.append(("`/whoami` keep-alive >= 0.7x bare uvicorn (issue 16; issue 5 asked 0.9x)", f"{r:.2f}x", r >= 0.7))
        r = rate("full", "pocketca") / rate("full", "bare uvicorn")
        out.append(("full mTLS handshakes >= 0.9x bare uvicorn", f"{r:.2f}x", r >= 0.9))
        r = rate("reuse", "pocketca") / rate("full_www", "pocketca")
        share = med([x.reused or 0.0 for x in mtls["reuse"]["pocketca"]])
        label = "resumed handshakes >= 2x full (pocketca, both with the request)"
        out.append((label, f"{r:.2f}x ({share:.0%} resumed)", r >= 2.0))
    s = med(startup[1])
    out.append(("start-up to healthy on an existing data dir <= 1.5 s", f"{s:.2f} s", s <= 1.5))
    return out


# --- main -------------------------------------------------------------------------------------------------


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def check_tools() -> None:
    missing = [
        t
        for t in ("wrk", "cfssl", "openssl", "nginx")
        if shutil.which(t) is None and not (t == "nginx" and Path("/usr/sbin/nginx").exists())
    ]
    if missing:
        raise SystemExit(f"missing tools: {', '.join(missing)}")


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
    if sys.argv[1:2] == ["_whoami_load"]:
        whoami_load_main(sys.argv[2:])
        return
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
