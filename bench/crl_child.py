"""bench/crl.py's child: one size in one fresh process, the CRL refreshes timed part by part, and peak memory."""

from __future__ import annotations

import datetime as dt
import resource
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import service.authority.crls as crls_module
from bench.crl_seed import LIFETIME, now_utc
from service.authority.crls import CRLPublisher
from service.ca.crl import RevokedEntry, build_crl
from service.ca.inspect import parse_serial
from service.ca.keys import load_private_key
from service.db import certificates, counters
from service.db.counters import REVOCATIONS
from service.db.session import Database
from service.keys.file_key import FileKeyStore

# --- the child: one size, one fresh process ----------------------------------------------------------------------


class TimedKeyStore(FileKeyStore):
    """The file key store, adding up how long it spent signing (for sign_crl: cryptography's Rust encode + sign)."""

    sign_s = 0.0

    def sign_crl(self, builder: x509.CertificateRevocationListBuilder) -> x509.CertificateRevocationList:
        started = time.perf_counter()
        try:
            return super().sign_crl(builder)
        finally:
            self.sign_s += time.perf_counter() - started

    if hasattr(FileKeyStore, "sign_crl_tbs"):  # should the service come to sign an assembled TBSCertList itself

        def sign_crl_tbs(self, tbs_certlist: bytes) -> bytes:
            started = time.perf_counter()
            try:
                return super().sign_crl_tbs(tbs_certlist)  # type: ignore[misc]
            finally:
                self.sign_s += time.perf_counter() - started


def memory_mib() -> dict[str, float]:
    """VmRSS and VmHWM (this process's peak) from /proc, plus ru_maxrss.

    ru_maxrss is not usable here: at execve Linux folds the pre-exec memory's high-water mark (the parent's, as
    the child was forked from it) into the process's ru_maxrss, so a child of a big parent starts out "big".
    VmHWM belongs to the memory map made by execve, so it counts only what this process touched.
    """
    values = {"ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # kB on Linux
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values


def read_entries(db: Database, now: dt.datetime) -> list[RevokedEntry]:
    """What CRLPublisher._build reads, the same way."""
    with db.reader() as session:
        return [
            RevokedEntry(parse_serial(serial), revoked_at, reason)
            for serial, revoked_at, reason in certificates.iter_revoked_unexpired(session, now)
        ]


def child(db_path: Path, ca_dir: Path, expected: int, runs: int) -> dict[str, Any]:
    key = load_private_key((ca_dir / "ca.key").read_bytes())
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    keystore = TimedKeyStore(key)
    db = Database(f"sqlite:///{db_path}")
    now = now_utc()
    publisher = CRLPublisher(db, keystore, ca_cert, lifetime=LIFETIME, clock=lambda: now)
    baseline = memory_mib()

    # refresh(wait=True) as the service runs it, with a stopwatch around the build (the rest is read and store)
    marks: dict[str, float] = {}
    builder_name = next(name for name in ("build_crl_der", "build_crl") if hasattr(crls_module, name))
    builder = getattr(crls_module, builder_name)

    def timed_builder(*args: Any, **kwargs: Any) -> Any:
        marks["build"] = time.perf_counter()
        try:
            return builder(*args, **kwargs)
        finally:
            marks["built"] = time.perf_counter()

    setattr(crls_module, builder_name, timed_builder)
    refreshes = []
    peak: dict[str, float] = {}
    for run in range(runs):
        if run:  # a revocation happened, as far as the publisher can tell: the next refresh rebuilds
            with db.transaction() as transaction:
                counters.increment(transaction, REVOCATIONS)
        keystore.sign_s = 0.0
        cpu = time.process_time()
        started = time.perf_counter()
        document = publisher.refresh(wait=True)
        total = time.perf_counter() - started
        cpu = time.process_time() - cpu
        assert document is not None, "the CRL was not stale"
        if run == 0:
            peak = memory_mib()  # the first build in a fresh process: what a worker pays
        refreshes.append(
            {
                "total_s": total,
                "cpu_s": cpu,
                "read_s": marks["build"] - started,
                "build_s": marks["built"] - marks["build"],
                "sign_s": keystore.sign_s,
                "store_s": started + total - marks["built"],
            }
        )
    setattr(crls_module, builder_name, builder)
    listed = len(x509.load_der_x509_crl(document.der))
    assert listed == expected, (listed, expected)

    # the same work in pieces, for the breakdown
    started = time.perf_counter()
    with db.reader() as session:
        rows = list(certificates.iter_revoked_unexpired(session, now))
    query_s = time.perf_counter() - started
    del rows
    started = time.perf_counter()
    entries = read_entries(db, now)
    read_s = time.perf_counter() - started
    keystore.sign_s = 0.0
    started = time.perf_counter()
    crl = build_crl(keystore, ca_cert, entries, number=document.number + 1, this_update=now, next_update=now + LIFETIME)
    build_s = time.perf_counter() - started
    assert abs(len(crl.public_bytes(Encoding.DER)) - len(document.der)) < 8  # the ECDSA signature's length varies
    db.dispose()
    return {
        "entries": expected,
        "builder": builder_name,
        "refreshes": refreshes,
        "alone": {"query_s": query_s, "read_s": read_s, "build_s": build_s, "sign_s": keystore.sign_s},
        "der_bytes": len(document.der),
        "baseline": baseline,
        "peak": peak,
    }
