"""Where a request's CPU goes, without TLS, HTTP or a load generator: the ASGI app called in-process.

    .venv/bin/python -m bench.inprocess [--requests 600]

Prints CPU µs per request (process time, so the committer thread's work counts) for POST /csr through the
whole app at concurrency 1 and 4, the same with the database commit taken out (what the app costs around it),
the issuance work alone (parse, policy, sign), bearer-token authentication, GET /whoami through the whole app,
and what a commit costs per certificate at batch sizes 1, 4 and 16. bench/SPEED.md quotes it. The machine is
shared: compare figures from one run, and run it twice.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging.config
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.app import create_app
from service.authority.issuance import csr_entry
from service.datadir.build import build_authority
from service.datadir.prepare import prepare
from service.db import audit as audit_rows
from service.db import certificates as certificate_rows
from service.logs import log_config
from service.settings import Settings


def _csr_bodies(n: int) -> list[bytes]:
    bodies = []
    for i in range(n):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bench-{i}")])
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
        bodies.append(json.dumps({"csr": csr.public_bytes(Encoding.PEM).decode()}).encode())
    return bodies


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]], tls: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8443),
        "state": {},
        "extensions": {"tls": tls} if tls else {},
    }


async def _call(app: Any, scope: dict[str, Any], body: bytes = b"") -> int:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _cpu_per_call(n: int, concurrency: int, one: Callable[[int], Awaitable[object]]) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def gated(i: int) -> object:
        async with gate:
            return await one(i)

    start = time.process_time()
    await asyncio.gather(*(gated(i) for i in range(n)))
    return (time.process_time() - start) / n * 1e6


async def run(n: int) -> None:
    logging.config.dictConfig(log_config())  # the server's logging, so log lines cost what they cost there
    logging.getLogger("pocketca").handlers[0].stream = open(os.devnull, "w")  # type: ignore[attr-defined]  # noqa: SIM115
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(_env_file=None, data_dir=Path(scratch) / "data", issue_rate_per_minute=0)  # type: ignore[call-arg]
        prepared = prepare(settings)
        authority = build_authority(settings)
        app = create_app(settings, authority=authority)
        token = prepared.admin_token or ""
        bodies = _csr_bodies(100)
        csr_headers = [
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"accept", b"application/json"),
        ]

        async def post(i: int) -> None:
            body = bodies[i % len(bodies)]
            headers = [*csr_headers, (b"content-length", str(len(body)).encode())]
            status = await _call(app, _scope("POST", "/csr", headers, None), body)
            assert status == 201, status

        for i in range(20):
            await post(i)
        results = {}
        for concurrency in (1, 4):
            results[f"POST /csr, whole app, concurrency {concurrency}"] = await _cpu_per_call(n, concurrency, post)

        caller = authority.authenticate_token(token)
        csrs = [json.loads(b)["csr"].encode() for b in bodies]

        async def prepare_only(i: int) -> None:
            authority.issuance.prepare(csr_entry(authority, csrs[i % len(csrs)], caller, None, None))

        results["issuance work alone (parse, policy, sign)"] = await _cpu_per_call(n, 1, prepare_only)

        async def authenticate(_: int) -> None:
            authority.authenticate_token(token)

        results["bearer-token authentication"] = await _cpu_per_call(n, 1, authenticate)

        client_key = ec.generate_private_key(ec.SECP256R1())
        holder = authority.issue_for_key(client_key.public_key(), cn="bench-client", sans=["bench-client"])
        tls = {"client_cert_chain": [holder.certificate.public_bytes(Encoding.PEM).decode()]}

        async def whoami(_: int) -> None:
            assert await _call(app, _scope("GET", "/whoami", [], tls)) == 200

        results["GET /whoami, whole app (revocation check included)"] = await _cpu_per_call(n * 5, 1, whoami)

        submit = authority.writes.submit

        async def no_commit(_: object) -> None:
            return None

        authority.writes.submit = no_commit  # type: ignore[method-assign,assignment]
        results["POST /csr, whole app, no database commit"] = await _cpu_per_call(n, 1, post)
        authority.writes.submit = submit  # type: ignore[method-assign]

        for label, micros in results.items():
            print(f"{label}: {micros:.0f} µs CPU per request")
        _commit_costs(authority)
        authority.close()


def _commit_costs(authority: Any) -> None:
    """CPU per certificate of writing its rows and committing, by batch size (SQLite, synchronous=FULL)."""
    db = authority.db
    now = dt.datetime.now(dt.UTC)
    der = os.urandom(650)
    audit = {
        "at": now,
        "action": "certificate.issue",
        "outcome": "ok",
        "actor": "token:bench",
        "token_id": "bench",
        "serial": "ab",
        "client_address": None,
        "detail": "profile=client",
    }
    for batch in (1, 4, 16):
        commits = 60
        start = time.process_time()
        for _ in range(commits):
            with db.raw_transaction() as transaction:
                for _ in range(batch):
                    row = {
                        "serial": secrets.token_hex(19),
                        "cn": "bench",
                        "subject": "CN=bench",
                        "sans": ["bench"],
                        "profile": "client",
                        "not_before": now,
                        "not_after": now + dt.timedelta(days=90),
                        "status": "valid",
                        "fingerprint_sha256": secrets.token_hex(32),
                        "issued_by": "token:bench",
                        "issued_via": "token",
                        "created_at": now,
                        "der": der,
                    }
                    certificate_rows.insert(transaction, row)
                    audit_rows.insert(transaction, audit)
        per_cert = (time.process_time() - start) / (commits * batch) * 1e6
        print(f"rows + commit, batch of {batch}: {per_cert:.0f} µs CPU per certificate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=600)
    asyncio.run(run(parser.parse_args().requests))


if __name__ == "__main__":
    main()
