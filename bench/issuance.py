"""Row 1: issuance, pocketca `POST /csr` vs `cfssl serve` over the same CA, CSRs, TLS and wrk script."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    CONCURRENCY,
    LUA,
    WORKERS,
    CpuWindow,
    Mode,
    Processes,
    Server,
    free_port,
    https_status,
    log,
    remember,
    wait_until,
    wait_workers,
)
from bench.servers import cfssl_ca_key, pocketca_init, start_cfssl, start_pocketca


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
