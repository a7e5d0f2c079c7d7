"""Prometheus metrics, aggregated across uvicorn workers (prometheus-client's multiprocess mode).

`serve` makes a fresh directory per start and sets PROMETHEUS_MULTIPROC_DIR for its workers before any of
them imports prometheus_client (which picks its value class at import). The metrics exist only once `enable()`
ran (the app does, at creation): the CLI's local commands record nothing and never import prometheus_client.
Recording is one dict lookup and an mmap'd add: cheap enough for the hot paths.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        kinds = ["profile", "caller"]
        self.issued = Counter("pocketca_certificates_issued_total", "certificates issued", kinds)
        self.renewed = Counter("pocketca_certificates_renewed_total", "certificates renewed", kinds)
        self.refused = Counter("pocketca_certificates_refused_total", "issuances and renewals refused", kinds)
        self.revocations = Counter("pocketca_revocations_total", "certificates revoked", ["reason"])
        self.latency = Histogram(  # its _count is the number of requests
            "pocketca_http_request_duration_seconds",
            "time to answer an HTTP request",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
        )
        self.ocsp = Counter("pocketca_ocsp_responses_total", "OCSP answers", ["status"])
        self.batch = Histogram("pocketca_group_commit_batch_size", "units committed together", buckets=BATCH_BUCKETS)
        self.token_refusals = Counter("pocketca_token_refusals_total", "bearer tokens refused", ["reason"])
        self.renewal_token_refusals = Counter(
            "pocketca_renewal_token_refusals_total", "renewal tokens refused", ["reason"]
        )
        self.auth_failures = Counter(
            "pocketca_auth_failures_total", "failed bearer tokens and console logins, by kind", ["kind"]
        )
        self.auth_throttled = Counter(
            "pocketca_auth_throttled_total", "attempts refused (429) after too many failures from an address", ["kind"]
        )


_metrics: _Metrics | None = None


def enable() -> None:
    global _metrics
    if _metrics is None:
        _metrics = _Metrics()


def get() -> _Metrics | None:
    return _metrics


def caller_kind(caller: Any) -> str:
    """token, enrollment, console, certificate (a renewal), acme or local: a bounded label, never an identity."""
    name = type(caller).__name__
    if name == "TokenCaller":
        return "console" if caller.console else "enrollment" if caller.is_enrollment else "token"
    if name == "ClientIdentity":
        return "certificate"
    if name == "AcmeCaller":
        return "acme"
    return "local"


def certificate(outcome: str, profile: str | None, caller: Any) -> None:
    m = _metrics
    if m is not None:
        counter = {"issued": m.issued, "renewed": m.renewed, "refused": m.refused}[outcome]
        counter.labels(profile or "-", caller_kind(caller)).inc()


def revocation(reason: str) -> None:
    if _metrics is not None:
        _metrics.revocations.labels(reason).inc()


def ocsp(status: str) -> None:
    if _metrics is not None:
        _metrics.ocsp.labels(status).inc()


def batch(size: int) -> None:
    if _metrics is not None:
        _metrics.batch.observe(size)


def token_refused(reason: str) -> None:
    if _metrics is not None:
        _metrics.token_refusals.labels(reason).inc()


def renewal_token_refused(reason: str) -> None:
    """`unauthenticated` (no signature of a certificate we issued), `revoked`, `expired` or `replayed`."""
    if _metrics is not None:
        _metrics.renewal_token_refusals.labels(reason).inc()


def auth_failure(kind: str) -> None:
    if _metrics is not None:
        _metrics.auth_failures.labels(kind).inc()


def auth_throttled(kind: str) -> None:
    if _metrics is not None:
        _metrics.auth_throttled.labels(kind).inc()


_children: dict[tuple[str, str, int], Any] = {}


def request(route: str, method: str, status: int, seconds: float) -> None:
    """Once per request (two mmap'd adds): the labelled child is looked up once per (route, method, status)."""
    m = _metrics
    if m is None:
        return
    key = (route, method, status)
    child = _children.get(key)
    if child is None:
        child = _children[key] = m.latency.labels(route, method, str(status))
    child.observe(seconds)


def fresh_multiprocess_dir() -> str:
    """A new, empty directory for this run's workers (counters from an earlier run must not add up)."""
    path = tempfile.mkdtemp(prefix="pocketca-metrics-")
    os.environ[MULTIPROC_ENV] = path
    return path


def remove_multiprocess_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def exposition(extra: Any = None) -> tuple[bytes, str]:
    """The text format for a scrape: every worker's files together (multiprocess mode), or this process."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    body = generate_latest(registry)
    if extra is not None:  # gauges computed now by this worker (the CRL), not stored
        scrape = CollectorRegistry()
        scrape.register(extra)
        body += generate_latest(scrape)
    return body, CONTENT_TYPE_LATEST
