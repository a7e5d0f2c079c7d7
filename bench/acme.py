"""certbot issuance wall time against pocketca's ACME server and against pebble, the reference ACME server.

Same client (Debian's certbot), same machine, same challenge (http-01, certbot standalone on a free port),
same DNS (pebble-challtestsrv answering 127.0.1.1 for every name: pocketca's identifier policy refuses loopback
and its own 127.0.0.1, so POCKETCA_ACME_ALLOW lets 127.0.1.1 through). Each run is a whole `certbot certonly`
with a fresh account: directory, nonce, newAccount, newOrder, authorization, challenge, validation, finalize,
download. pebble runs with PEBBLE_VA_NOSLEEP=1 and PEBBLE_WFE_NONCEREJECT=0 (no artificial delays or nonce
rejections). Median of 5 (`--runs N` to change).

    .venv/bin/python -m bench.acme [--runs 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from service.ca.identifiers import DEFAULT_ALLOW

CHALLENGE_IP = "127.0.1.1"  # a loopback address that is not one of the service's own


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, verify: str | bool, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, verify=verify, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def self_signed(directory: Path) -> tuple[Path, Path]:
    """pebble's own HTTPS certificate (pebble ships none in Debian)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName([x509.DNSName("localhost")])
    cert = (
        x509.CertificateBuilder(name, name, key.public_key(), x509.random_serial_number(), now, now + dt.timedelta(1))
        .add_extension(san, critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "pebble.pem", directory / "pebble.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def certbot(directory: str, ca_bundle: Path, http_port: int, workdir: Path, name: str) -> float:
    args = [
        "certbot", "certonly", "--standalone", "--non-interactive", "--agree-tos", "--register-unsafely-without-email",
        "--server", directory, "--http-01-port", str(http_port), "--http-01-address", CHALLENGE_IP, "-d", name,
        "--config-dir", str(workdir / "config"), "--work-dir", str(workdir / "work"),
        "--logs-dir", str(workdir / "logs"),
    ]  # fmt: skip
    env = {**os.environ, "REQUESTS_CA_BUNDLE": str(ca_bundle)}
    start = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=180, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"certbot against {directory} failed:\n{result.stderr}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    for binary in ("certbot", "pebble", "pebble-challtestsrv"):
        if shutil.which(binary) is None:
            print(f"{binary} is missing: apt-get install certbot pebble", file=sys.stderr)
            return 2
    root = Path(tempfile.mkdtemp(prefix="pocketca-bench-acme-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        dns_port, management, http_port, tls_port = free_port(), free_port(), free_port(), free_port()
        processes.append(subprocess.Popen(
            ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{dns_port}", "-management", f"127.0.0.1:{management}",
             "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", CHALLENGE_IP, "-defaultIPv6", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
        env.update({
            "POCKETCA_DATA_DIR": str(root / "pocketca"), "POCKETCA_PORT": str(port),
            "POCKETCA_PUBLIC_URL": f"https://localhost:{port}", "POCKETCA_HTTP_PORT": "0",
            "POCKETCA_ACME_HTTP_PORT": str(http_port), "POCKETCA_ACME_TLS_PORT": str(tls_port),
            "POCKETCA_ACME_DNS_RESOLVER": f"127.0.0.1:{dns_port}",
            "POCKETCA_ACME_ALLOW": ",".join([*DEFAULT_ALLOW, f"{CHALLENGE_IP}/32"]),
        })  # fmt: skip
        with open(root / "pocketca.log", "wb") as log:
            serve = [sys.executable, "-m", "service", "serve"]
            processes.append(subprocess.Popen(serve, env=env, stdout=log, stderr=log))
        pocketca_ca = root / "pocketca" / "ca.pem"
        deadline = time.monotonic() + 30
        while not pocketca_ca.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        wait_for(f"https://localhost:{port}/healthz", str(pocketca_ca))

        pebble_port = free_port()
        cert, key = self_signed(root)
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{pebble_port}", "managementListenAddress": f"127.0.0.1:{free_port()}",
            "certificate": str(cert), "privateKey": str(key), "httpPort": http_port, "tlsPort": tls_port,
            "ocspResponderURL": "", "externalAccountBindingRequired": False,
        }}  # fmt: skip
        (root / "pebble.json").write_text(json.dumps(config))
        pebble_env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        with open(root / "pebble.log", "wb") as log:
            processes.append(subprocess.Popen(
                ["pebble", "-config", str(root / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns_port}"],
                env=pebble_env, stdout=log, stderr=log,
            ))  # fmt: skip
        wait_for(f"https://localhost:{pebble_port}/dir", str(cert))

        servers = {
            "pocketca": (f"https://localhost:{port}/acme/directory", pocketca_ca),
            "pebble": (f"https://localhost:{pebble_port}/dir", cert),
        }
        times: dict[str, list[float]] = {name: [] for name in servers}
        for run in range(args.runs):  # interleaved, so background load hits both alike
            for name, (directory, bundle) in servers.items():
                workdir = root / f"{name}-{run}"
                times[name].append(certbot(directory, bundle, http_port, workdir, f"run{run}.{name}.bench.test"))
        print("| server | certbot certonly, http-01, median of", args.runs, "| min | max |")
        print("| --- | --- | --- | --- |")
        for name, values in times.items():
            print(f"| {name} | {statistics.median(values):.2f} s | {min(values):.2f} s | {max(values):.2f} s |")
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
