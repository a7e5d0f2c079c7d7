"""For operators: GET /healthz (alive), GET /readyz (ready to serve), GET /metrics (Prometheus)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Response

from service import metrics
from service.api.schemas import HealthResponse, ReadyResponse
from service.authority import Authority
from service.authority.callers import require_scope
from service.http.callers import AuthorityDep, CallerDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthResponse, summary="Health check")
def healthz(authority: AuthorityDep) -> HealthResponse:
    authority.check_health()
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    response_model_exclude_none=True,
    summary="Ready: the database answers and the CRLs are fresh, the root's too (else 503)",
)
def readyz(authority: AuthorityDep) -> ReadyResponse:
    authority.check_ready()
    return ReadyResponse(status="ready", warnings=authority.readiness_warnings() or None)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}},
    summary="Prometheus metrics of every worker (read or admin token)",
)
def prometheus_metrics(authority: AuthorityDep, caller: CallerDep) -> Response:
    require_scope(caller, "admin", "read")
    body, content_type = metrics.exposition(_CRLCollector(authority))
    return Response(body, media_type=content_type)


class _CRLCollector:
    """The CRL's number, age and size, read when scraped (the same in every worker: it is the stored CRL); the
    root CRLs' number, nextUpdate and size."""

    def __init__(self, authority: Authority) -> None:
        self.authority = authority

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        document = self.authority.current_crl()
        age = (self.authority.clock() - document.this_update).total_seconds()
        yield GaugeMetricFamily("pocketca_crl_number", "number of the current CRL", value=document.number)
        yield GaugeMetricFamily("pocketca_crl_age_seconds", "seconds since the current CRL's thisUpdate", value=age)
        entries = self.authority.crl_entries(document)
        yield GaugeMetricFamily("pocketca_crl_entries", "certificates the current CRL lists", value=entries)
        next_update = document.next_update.timestamp()
        yield GaugeMetricFamily("pocketca_crl_next_update_timestamp_seconds", "the CRL's nextUpdate", value=next_update)
        roots = list(self.authority.root_crls.published())  # each offline root's newest CRL (`pocketca ca crl`)
        if roots:
            number = GaugeMetricFamily("pocketca_root_crl_number", "number of the root's CRL", labels=["root"])
            until = GaugeMetricFamily(
                "pocketca_root_crl_next_update_timestamp_seconds",
                "the root CRL's nextUpdate: sign the next (`pocketca ca crl`) before it passes",
                labels=["root"],
            )
            count = GaugeMetricFamily("pocketca_root_crl_entries", "issuing CAs the root's CRL lists", labels=["root"])
            for crl in roots:
                number.add_metric([crl.root_id], crl.document.number)
                until.add_metric([crl.root_id], crl.document.next_update.timestamp())
                count.add_metric([crl.root_id], crl.entries)
            yield from (number, until, count)
