"""For operators, against a real `pocketca serve` with two workers: /metrics aggregated across workers, /readyz,
JSON logs with request ids (a trusted proxy's X-Request-Id kept, else one made, echoed in the response), and
SIGHUP reloading profiles.toml in every worker instead of killing the service."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from service.app import create_app
from service.ca.crl import crl_number
from service.datadir.layout import DataPaths
from service.datadir.prepare import prepare
from tests.conftest import LiveServer, authority_at, make_settings, start_server
from tests.helpers import csr_pem, p256


@pytest.fixture(scope="module")
def ops_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("ops") / "data",
        workers=2,
        extra_env={"POCKETCA_LOG_FORMAT": "json", "POCKETCA_TRUSTED_PROXIES": "127.0.0.1/32"},
    )
    yield server
    server.stop()


def _json_lines(server: LiveServer) -> list[dict[str, object]]:
    lines = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def _issue(server: LiveServer, cn: str, profile: str | None = None, request_id: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    if request_id:
        headers["X-Request-Id"] = request_id
    body: dict[str, object] = {"csr": csr_pem(p256(), cn).decode()}
    if profile:
        body["profile"] = profile
    with server.client() as http:  # a connection each: the kernel spreads them over the workers
        return http.post("/csr", json=body, headers=headers)


def _wait_for(predicate, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the Prometheus text format (labels in any order)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels} in:\n{text}")


def test_request_ids_and_json_logs(ops_server: LiveServer) -> None:
    response = _issue(ops_server, "rid.example", request_id="proxy-abc-123")
    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"] == "proxy-abc-123"
    serial = response.json()["serial"]

    def logged() -> bool:
        return any(
            line.get("request_id") == "proxy-abc-123" and line.get("logger") == "pocketca.access"
            for line in _json_lines(ops_server)
        )

    assert _wait_for(logged)
    ours = [line for line in _json_lines(ops_server) if line.get("request_id") == "proxy-abc-123"]
    audit = [line for line in ours if line["logger"] == "pocketca.audit"]
    access = [line for line in ours if line["logger"] == "pocketca.access"]
    assert (
        audit and audit[-1]["action"] == "certificate.issue" and audit[-1]["serial"] == serial
    )  # fields, not a string
    assert access[0]["status"] == 201 and access[0]["path"] == "/csr" and access[0]["level"] == "info"
    for line in ours:
        assert str(line["time"]).endswith("Z")
        assert dt.datetime.fromisoformat(str(line["time"])).tzinfo is not None
    assert "pca_" not in ops_server.log().replace(ops_server.admin_token[:20], "")  # no token in any line

    with ops_server.client() as http:
        made = http.get("/healthz").headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
        assert http.get("/healthz", headers={"X-Request-Id": "bad id with spaces"}).headers["x-request-id"] != (
            "bad id with spaces"
        )


def test_metrics_add_up_across_workers(ops_server: LiveServer) -> None:
    with ops_server.client() as http:
        assert http.get("/metrics").status_code == 401
        before = http.get("/metrics", headers={"Authorization": f"Bearer {ops_server.admin_token}"}).text
    try:
        issued_before = _sample(before, "pocketca_certificates_issued_total", profile="client", caller="token")
    except AssertionError:
        issued_before = 0.0
    serials = []
    for i in range(4):
        response = _issue(ops_server, f"m{i}.example")
        assert response.status_code == 201
        serials.append(response.json()["serial"])
    assert _issue(ops_server, "bad name!").status_code == 403
    with ops_server.client() as http:
        admin = {"Authorization": f"Bearer {ops_server.admin_token}"}
        http.post(f"/certs/{serials[0]}/revoke", json={"reason": "keyCompromise"}, headers=admin).raise_for_status()
        http.post("/ocsp", content=b"garbage", headers={"Content-Type": "application/ocsp-request"})
        http.get("/whoami", headers={"Authorization": "Basic nope"})
        text = http.get("/metrics", headers=admin).text
    assert _sample(text, "pocketca_certificates_issued_total", profile="client", caller="token") == issued_before + 4
    assert _sample(text, "pocketca_certificates_refused_total", caller="token") >= 1
    assert _sample(text, "pocketca_revocations_total", reason="keyCompromise") == 1
    assert _sample(text, "pocketca_ocsp_responses_total", status="malformedRequest") >= 1
    assert _sample(text, "pocketca_http_request_duration_seconds_count", route="/csr", method="POST", status="201") >= 4
    assert _sample(text, "pocketca_http_request_duration_seconds_count", route="/csr", status="403") >= 1
    assert _sample(text, "pocketca_http_request_duration_seconds_count", route="/certs/{serial}/revoke") == 1
    assert _sample(text, "pocketca_http_request_duration_seconds_bucket", route="/csr", status="201", le="+Inf") >= 4
    assert _sample(text, "pocketca_group_commit_batch_size_count") >= 4
    assert _sample(text, "pocketca_crl_number") >= 1
    assert 0 <= _sample(text, "pocketca_crl_age_seconds") < 3600
    # the CRL refresher puts the revocation on the next CRL within a poll or two; the gauge counts that CRL's entries
    served: list[x509.CertificateRevocationList] = []

    def revocation_listed() -> bool:
        with ops_server.client() as http:
            served[:] = [x509.load_der_x509_crl(http.get("/crl").content)]
        return served[0].get_revoked_certificate_by_serial_number(int(serials[0].replace(":", ""), 16)) is not None

    assert _wait_for(revocation_listed), "the revocation never reached the CRL"
    with ops_server.client() as http:
        text = http.get("/metrics", headers=admin).text
        assert http.get("/readyz").json() == {"status": "ready"}
    assert _sample(text, "pocketca_crl_entries") == len(served[0]) == 1
    assert _sample(text, "pocketca_crl_number") == crl_number(served[0])


def test_sighup_reloads_profiles_in_every_worker(ops_server: LiveServer) -> None:
    assert _issue(ops_server, "job.example", profile="ci-runner").status_code == 403  # not yet configured
    DataPaths(ops_server.data_dir).profiles.write_text(
        '[profiles.ci-runner]\nextended_key_usage = ["clientAuth"]\ndefault_validity_days = 2\nmax_validity_days = 7\n'
    )
    ops_server.process.send_signal(signal.SIGHUP)

    def reloaded() -> bool:
        return sum("SIGHUP: reloaded" in str(line.get("message")) for line in _json_lines(ops_server)) >= 2

    assert _wait_for(reloaded), ops_server.log()
    for i in range(4):  # whichever worker answers knows the profile
        response = _issue(ops_server, f"job{i}.example", profile="ci-runner")
        assert response.status_code == 201, response.text
    assert ops_server.process.poll() is None

    DataPaths(ops_server.data_dir).profiles.write_text("[profiles.broken\n")
    ops_server.process.send_signal(signal.SIGHUP)
    assert _wait_for(lambda: "not reloaded" in ops_server.log())
    assert _issue(ops_server, "job9.example", profile="ci-runner").status_code == 201  # the profiles in use stay


def test_text_logs_have_utc_times_with_a_zone(live_server: LiveServer) -> None:
    with live_server.client() as http:
        http.get("/healthz", headers={"X-Request-Id": "untrusted-proxy-id"})
    assert _wait_for(lambda: "GET /healthz" in live_server.log())
    line = next(line for line in reversed(live_server.log().splitlines()) if "GET /healthz" in line)
    utc = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.match(rf"^{utc} INFO pocketca\.access GET /healthz .* request_id=[0-9a-f]{{32}}$", line), line
    assert "untrusted-proxy-id" not in line  # the fixture's server trusts no proxy


def test_readyz_is_503_when_the_crl_is_stale(tmp_path: Path) -> None:
    import asyncio

    settings = make_settings(tmp_path / "data")
    prepare(settings)
    later = authority_at(settings, dt.datetime.now(dt.UTC) + dt.timedelta(days=30))

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(authority=later))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
            return await http.get("/readyz")

    try:
        response = asyncio.run(ask())
    finally:
        later.close()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "CRL expired" in response.json()["detail"]
