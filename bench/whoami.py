"""Row 2: mTLS, `GET /whoami` keep-alive (bench/whoami_load.py) and TLS handshakes (`openssl s_time`) vs nginx
and a bare uvicorn (bench/bare_app.py)."""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.common import CLK_TCK, CpuWindow, Mode, Processes, Server, free_port, log, remember
from bench.issuance import CaSetup
from bench.servers import start_bare, start_nginx


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
        str(Path(__file__).resolve().parent / "whoami_load.py"),
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
