"""What the ACME end-to-end tests share: pebble-challtestsrv as the DNS server (records set over its HTTP
management API) and a real `pocketca serve` whose ACME validation uses it and connects to free ports.

The challenge servers (challtestsrv's, certbot's, lego's) listen on CHALLENGE_IP, a loopback address that is not
one of the service's own, and every name resolves to it; the identifier policy refuses loopback by default, so the
service is started with POCKETCA_ACME_ALLOW letting that one address through (ALLOW_CHALLENGE_IP)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.ca.identifiers import DEFAULT_ALLOW
from tests.conftest import LiveServer, start_server
from tests.helpers import free_port

CHALLENGE_IP = "127.0.1.1"
ALLOW_CHALLENGE_IP = ",".join([*DEFAULT_ALLOW, f"{CHALLENGE_IP}/32"])


def need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is missing: apt-get install {package} (.ci/run does)")
    return path


@dataclass
class ChallTestSrv:
    """pebble-challtestsrv: a DNS server answering A CHALLENGE_IP for every name (or the A records we set), and
    the TXT records we set; with `http01`, its http-01 server on CHALLENGE_IP."""

    dns_port: int
    management_port: int
    process: subprocess.Popen[bytes]
    http01_port: int | None = None

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.dns_port}"

    def _post(self, path: str, body: dict[str, object]) -> None:
        response = httpx.post(f"http://127.0.0.1:{self.management_port}/{path}", json=body, timeout=10)
        response.raise_for_status()

    def set_txt(self, fqdn: str, value: str) -> None:
        self._post("set-txt", {"host": fqdn if fqdn.endswith(".") else fqdn + ".", "value": value})

    def clear_txt(self, fqdn: str) -> None:
        self._post("clear-txt", {"host": fqdn if fqdn.endswith(".") else fqdn + "."})

    def add_http01(self, token: str, content: str) -> None:
        self._post("add-http01", {"token": token, "content": content})

    def set_a(self, fqdn: str, addresses: list[str]) -> None:
        self._post("add-a", {"host": fqdn if fqdn.endswith(".") else fqdn + ".", "addresses": addresses})

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def challtestsrv(log_dir: Path, *, http01: bool = False) -> Iterator[ChallTestSrv]:
    binary = need("pebble-challtestsrv", "pebble")
    dns_port, management_port = free_port(), free_port()
    http01_port = free_port() if http01 else None
    log = open(log_dir / "challtestsrv.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            binary,
            "-dns01", f"127.0.0.1:{dns_port}",
            "-management", f"127.0.0.1:{management_port}",
            "-http01", f"{CHALLENGE_IP}:{http01_port}" if http01_port else "",
            "-https01", "", "-tlsalpn01", "",
            "-defaultIPv4", CHALLENGE_IP, "-defaultIPv6", "",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = ChallTestSrv(dns_port, management_port, process, http01_port)
    deadline = time.monotonic() + 20
    while True:
        try:
            server.clear_txt("probe.test")
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                log.close()
                raise RuntimeError((log_dir / "challtestsrv.log").read_text()) from None
            time.sleep(0.1)
    try:
        yield server
    finally:
        server.stop()
        log.close()


@dataclass
class AcmeServer:
    live: LiveServer
    http_port: int  # where http-01 validation connects (the client's standalone server listens here)
    tls_port: int  # where tls-alpn-01 validation connects

    @property
    def directory(self) -> str:
        return f"{self.live.url}/acme/directory"


def start_acme_server(
    data_dir: Path, dns: ChallTestSrv, *, http_port: int | None = None, extra_env: dict[str, str] | None = None
) -> AcmeServer:
    http_port = http_port or free_port()
    tls_port = free_port()
    env = {
        "POCKETCA_ACME_HTTP_PORT": str(http_port),
        "POCKETCA_ACME_TLS_PORT": str(tls_port),
        "POCKETCA_ACME_DNS_RESOLVER": dns.resolver,
        "POCKETCA_ACME_ALLOW": ALLOW_CHALLENGE_IP,
        "POCKETCA_ACME_ACCOUNTS_PER_ADDRESS": "1000",  # every test's accounts come from 127.0.0.1
        **(extra_env or {}),
    }
    return AcmeServer(start_server(data_dir, extra_env=env), http_port, tls_port)
