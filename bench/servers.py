"""The servers the suite measures, started and waited for (pocketca, cfssl, nginx, a bare uvicorn), and the CSRs
they are sent."""

from __future__ import annotations

import shutil
import ssl
import time
from pathlib import Path

from bench.common import (
    NGINX_TEMPLATE,
    ROOT,
    TLS12_CIPHERS,
    VENV_BIN,
    WORKERS,
    Processes,
    Server,
    https_status,
    remember,
    run,
    wait_until,
    wait_workers,
)


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


def start_pocketca(
    procs: Processes, data_dir: Path, port: int, cwd: Path, name: str = "pocketca", bin_dir: Path = VENV_BIN
) -> Server:
    """`pocketca serve` from `bin_dir` (bench/ab.py serves an earlier commit from a bin dir of its own)."""
    cmd = [
        str(bin_dir / "pocketca"),
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


def start_pocketca_ready(
    procs: Processes, data_dir: Path, port: int, cwd: Path, name: str, bin_dir: Path = VENV_BIN
) -> tuple[Server, float]:
    """Started and healthy, with every worker up; also the seconds from the start to the first 200 /healthz."""
    start = time.perf_counter()
    server = start_pocketca(procs, data_dir, port, cwd, name, bin_dir)
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
