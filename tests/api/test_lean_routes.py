"""POST /csr on its LeanRoute answers exactly as FastAPI's own APIRoute answers for the same endpoint.

Each case goes to two apps over one authority: the app as `serve` builds it (the route is a `LeanRoute`, reached
through http.lean.LeanDispatch), and the same app with that route swapped for FastAPI's `APIRoute` of the same
endpoint (FastAPI's dependency solver, parameter validation and exception wrapping). The answers, the audit rows
and the access log line must match, except for what differs between any two issuances (serial, fingerprint,
certificate, dates).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import select
from starlette.types import Receive, Scope, Send

from service.app import create_app
from service.authority import Authority, build_renewal_token
from service.db.models import AuditRecord
from service.http.lean import LeanRoute
from service.settings import Settings
from tests.api.conftest import Holder, bearer
from tests.helpers import cert_pem, csr_pem, p256

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
PEM_CHAIN = "application/pem-certificate-chain"
PKCS10 = "application/pkcs10"
# what differs between any two issuances, even of the same CSR by the same caller
PER_ISSUANCE = {"serial", "fingerprint_sha256", "certificate", "not_before", "not_after"}
# headers that follow from those (the serial's hex length varies)
PER_ISSUANCE_HEADERS = {"x-request-id", "content-length", "location"}
AUDIT_FIELDS = ("action", "outcome", "actor", "token_id", "client_address", "detail")


def plain(app: FastAPI) -> FastAPI:
    """The app with each LeanRoute replaced by FastAPI's APIRoute for the same endpoint and declaration."""
    for i, route in enumerate(app.router.routes):
        if isinstance(route, LeanRoute):
            app.router.routes[i] = APIRoute(
                route.path,
                route.endpoint,
                methods=list(route.methods or ()),
                status_code=route.status_code,
                response_model=route.response_model,
                dependency_overrides_provider=app,
            )
    return app


@dataclass
class Probe:
    """Wraps an app to see which route answered (Starlette's router, and LeanDispatch, put it into the scope).
    Also plays a TLS client certificate, as uvicorn's TLS layer would put it in the scope."""

    app: FastAPI
    peer_pem: str | None = None
    scopes: list[Scope] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.peer_pem is not None:
            scope["extensions"] = {**scope.get("extensions", {}), "tls": {"client_cert_chain": [self.peer_pem]}}
        self.scopes.append(scope)
        await self.app(scope, receive, send)

    @property
    def last_route(self) -> object:
        return self.scopes[-1].get("route")


@dataclass
class Side:
    http: httpx.AsyncClient
    probe: Probe


@dataclass
class Pair:
    lean: Side
    plain: Side
    authority: Authority

    def present(self, peer_pem: str | None) -> None:
        self.lean.probe.peer_pem = self.plain.probe.peer_pem = peer_pem


@contextlib.asynccontextmanager
async def _side(app: FastAPI) -> AsyncIterator[Side]:
    probe = Probe(app)
    transport = httpx.ASGITransport(app=probe, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield Side(http, probe)


@pytest.fixture
async def pair(authority: Authority) -> AsyncIterator[Pair]:
    async with _side(create_app(authority=authority)) as lean, _side(plain(create_app(authority=authority))) as p:
        yield Pair(lean, p, authority)


@dataclass
class Answer:
    response: httpx.Response
    audit: list[dict[str, object]]  # the rows this request wrote, oldest first
    serials: list[str | None]  # their serials, compared apart (a new certificate has a new one)
    access_log: str  # the request's access log line, without its time


def _last_audit_id(authority: Authority) -> int:
    with authority.db.reader() as session:
        return session.scalar(select(AuditRecord.id).order_by(AuditRecord.id.desc()).limit(1)) or 0


def _audit_since(authority: Authority, after: int) -> list[AuditRecord]:
    with authority.db.reader() as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.id > after).order_by(AuditRecord.id)))


async def _send(pair: Pair, lean: bool, request: dict[str, Any], caplog: pytest.LogCaptureFixture) -> Answer:
    """One request to one side, checked to be answered by that side's kind of route."""
    caplog.set_level(logging.INFO, logger="pocketca.access")
    side = pair.lean if lean else pair.plain
    before = _last_audit_id(pair.authority)
    caplog.clear()
    response = await side.http.post("/csr", **request)
    rows = _audit_since(pair.authority, before)
    lines = [r.getMessage() for r in caplog.records if r.name == "pocketca.access"]
    assert len(lines) == 1, lines
    route = side.probe.last_route
    assert isinstance(route, APIRoute) and isinstance(route, LeanRoute) == lean, route
    return Answer(
        response,
        [{name: getattr(row, name) for name in AUDIT_FIELDS} for row in rows],
        [row.serial for row in rows],
        lines[0].rsplit(" ms=", 1)[0],
    )


async def _both(pair: Pair, request: dict[str, Any], caplog: pytest.LogCaptureFixture) -> tuple[Answer, Answer]:
    """The same request: first to the LeanRoute, then to FastAPI's APIRoute."""
    return await _send(pair, True, request, caplog), await _send(pair, False, request, caplog)


def _headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in PER_ISSUANCE_HEADERS}


def _comparable_body(response: httpx.Response) -> object:
    content_type = response.headers.get("content-type", "")
    if content_type == PEM_CHAIN:
        leaf, *chain = x509.load_pem_x509_certificates(response.content)
        # the same CSR key on both sides: every extension matches, the SKI included
        return {"leaf_subject": leaf.subject, "leaf_extensions": list(leaf.extensions), "chain": chain}
    body = response.json()
    if response.status_code == 201:
        return {k: v for k, v in body.items() if k not in PER_ISSUANCE}
    return body  # a problem: whole


async def _assert_same(lean: Answer, routed: Answer, authority: Authority, admin_token: str, pair: Pair) -> None:
    assert lean.response.status_code == routed.response.status_code, (lean.response.text, routed.response.text)
    assert _headers(lean.response) == _headers(routed.response)
    assert ("location" in lean.response.headers) == ("location" in routed.response.headers)
    assert _comparable_body(lean.response) == _comparable_body(routed.response)
    assert lean.audit == routed.audit
    assert [s is None for s in lean.serials] == [s is None for s in routed.serials]
    assert lean.access_log == routed.access_log
    if lean.response.status_code == 201:
        await _assert_recorded(lean, authority, admin_token, pair)


async def _assert_recorded(answer: Answer, authority: Authority, admin_token: str, pair: Pair) -> None:
    """An issued certificate is in the database and the audit once the response is out (recorded, then returned)."""
    location = answer.response.headers["location"]
    serial = location.removeprefix("/certs/")
    if answer.response.headers["content-type"] == PEM_CHAIN:
        leaf = x509.load_pem_x509_certificates(answer.response.content)[0]
        assert format(leaf.serial_number, "x") == serial
    else:
        assert answer.response.json()["serial"] == serial
        leaf = x509.load_pem_x509_certificate(answer.response.json()["certificate"].encode())
    stored = await pair.lean.http.get(location, headers=bearer(admin_token))
    assert stored.status_code == 200, stored.text
    assert x509.load_pem_x509_certificate(stored.json()["certificate"].encode()) == leaf
    issues = [row for row, s in zip(answer.audit, answer.serials, strict=True) if s == serial]
    assert [row["action"] for row in issues] in (["certificate.issue"], ["certificate.renew"])
    assert issues[0]["outcome"] == "ok"
    leaf.verify_directly_issued_by(authority.ca_certificate)


# --- the cases ------------------------------------------------------------------------------------

KEY = p256()
SVC_CSR = csr_pem(KEY, "svc.example.com", ["svc.example.com", "10.0.0.7", "ops@example.com"]).decode()
# the server profile takes any well-formed DNS name; web.internal is the one test_csr.py signs as a server
WEB_CSR_DER = x509.load_pem_x509_csr(csr_pem(KEY, "web.internal", ["web.internal"])).public_bytes(Encoding.DER)
WEB_CSR_PEM = x509.load_der_x509_csr(WEB_CSR_DER).public_bytes(Encoding.PEM)
# refused for three rules at once: the key, the name (no usable name at all) and the validity
WEAK_CSR = csr_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024), "bad name!").decode()

Build = Callable[[str], dict[str, Any]]  # the admin token -> httpx's keyword arguments


def _json(body: dict[str, object], params: Any = None, **headers: str) -> Build:
    return lambda token: {"json": body, "headers": {**bearer(token), **headers}, "params": params or {}}


def _raw(content: bytes, content_type: str | None, params: Any = None, **headers: str) -> Build:
    def build(token: str) -> dict[str, Any]:
        typed = {"Content-Type": content_type} if content_type is not None else {}
        return {"content": content, "headers": {**bearer(token), **typed, **headers}, "params": params or {}}

    return build


def _as(authorization: str | None, build: Build) -> Build:
    """`build` with another Authorization header, or none."""

    def rebuilt(token: str) -> dict[str, Any]:
        request = build(token)
        request["headers"].pop("Authorization")
        if authorization is not None:
            request["headers"]["Authorization"] = authorization.replace("<admin>", token)
        return request

    return rebuilt


CASES: dict[str, tuple[int, Build]] = {
    # signed
    "json": (201, _json({"csr": SVC_CSR})),
    "json-profile-and-days": (201, _json({"csr": SVC_CSR, "profile": "peer", "validity_days": 10})),
    "json-suffix-and-charset": (
        201,
        _raw(json.dumps({"csr": SVC_CSR}).encode(), "application/csr+json; charset=utf-8"),
    ),
    "json-pem-chain": (201, _json({"csr": SVC_CSR}, Accept=PEM_CHAIN)),
    "json-ignores-valid-query": (201, _json({"csr": SVC_CSR}, {"profile": "server", "validity_days": "7"})),
    "pkcs10-der-server-30-days": (201, _raw(WEB_CSR_DER, PKCS10, {"profile": "server", "validity_days": "30"})),
    "pkcs10-pem-pem-chain": (201, _raw(WEB_CSR_PEM, PKCS10, {"profile": "server"}, Accept=PEM_CHAIN)),
    "pkcs10-unknown-query-ignored": (201, _raw(WEB_CSR_DER, PKCS10, {"profile": "server", "surprise": "1"})),
    "pkcs10-repeated-query-last-wins": (
        201,
        _raw(WEB_CSR_DER, PKCS10, [("validity_days", "abc"), ("validity_days", "30"), ("profile", "server")]),
    ),
    "bearer-lower-case": (201, _as("bearer <admin>", _json({"csr": SVC_CSR}))),
    # the query
    "query-days-not-int-422": (422, _raw(WEB_CSR_DER, PKCS10, {"validity_days": "abc"})),
    "query-days-fraction-422": (422, _raw(WEB_CSR_DER, PKCS10, {"validity_days": "1.5"})),
    "query-days-empty-422": (422, _raw(WEB_CSR_DER, PKCS10, {"validity_days": ""})),
    "query-profile-65-422": (422, _raw(WEB_CSR_DER, PKCS10, {"profile": "p" * 65})),
    "query-both-bad-422": (422, _raw(WEB_CSR_DER, PKCS10, {"profile": "p" * 65, "validity_days": "abc"})),
    "query-bad-with-json-422": (422, _json({"csr": SVC_CSR}, {"validity_days": "abc"})),
    "query-unknown-profile-403": (403, _raw(WEB_CSR_DER, PKCS10, {"profile": "nosuch"})),
    # the body's type
    "text-plain-415": (415, _raw(SVC_CSR.encode(), "text/plain")),
    "form-415": (415, _raw(b"csr=abc", "application/x-www-form-urlencoded")),
    "no-content-type-415": (415, _raw(SVC_CSR.encode(), None)),
    # credentials (checked before the query and the body)
    "no-authorization-401": (401, _as(None, _raw(WEB_CSR_DER, PKCS10))),
    "no-authorization-bad-query-401": (401, _as(None, _raw(WEB_CSR_DER, PKCS10, {"validity_days": "abc"}))),
    "basic-scheme-401": (401, _as("Basic dXNlcjpwYXNz", _raw(WEB_CSR_DER, PKCS10))),
    "bearer-without-token-401": (401, _as("Bearer", _raw(WEB_CSR_DER, PKCS10))),
    "bearer-garbage-401": (401, _as("Bearer garbage", _raw(WEB_CSR_DER, PKCS10))),
    "bearer-unknown-id-401": (401, _as("Bearer pca_0000000000000000_nope", _raw(WEB_CSR_DER, PKCS10))),
    "bearer-wrong-secret-401": (401, _as("Bearer <admin>x", _raw(WEB_CSR_DER, PKCS10))),
    # the JSON body
    "json-extra-field-422": (422, _json({"csr": SVC_CSR, "surprise": 1})),
    "json-missing-csr-422": (422, _json({"profile": "client"})),
    "json-days-not-int-422": (422, _json({"csr": SVC_CSR, "validity_days": "many"})),
    "json-profile-65-422": (422, _json({"csr": SVC_CSR, "profile": "p" * 65})),
    "json-not-json-422": (422, _raw(b"{not json", "application/json")),
    "json-not-an-object-422": (422, _raw(b"[1, 2]", "application/json")),
    # the CSR
    "json-csr-not-a-csr-400": (400, _json({"csr": "nope"})),
    "pkcs10-not-a-csr-400": (400, _raw(b"not a csr", PKCS10)),
    "pkcs10-empty-400": (400, _raw(b"", PKCS10)),
    "pkcs10-truncated-400": (400, _raw(WEB_CSR_DER[:-7], PKCS10)),
    # policy
    "policy-weak-key-bad-name-5000-days-403": (403, _json({"csr": WEAK_CSR, "validity_days": 5000})),
    "policy-zero-days-403": (403, _raw(WEB_CSR_DER, PKCS10, {"profile": "server", "validity_days": "0"})),
    "policy-client-over-365-days-403": (403, _json({"csr": SVC_CSR, "validity_days": 366})),
}


def _uses_left(lean: Answer, routed: Answer, after_lean: int, after_route: int) -> None:
    """Each side spent one use of the same token, so their token.use rows differ in what was left: checked, then
    set aside for the comparison."""
    for answer, left in ((lean, after_lean), (routed, after_route)):
        uses = [row for row in answer.audit if row["action"] == "token.use"]
        assert [row["detail"] for row in uses] == [f"uses_left={left}"]
        for row in uses:
            row["detail"] = "uses_left=..."


@pytest.mark.parametrize("case", list(CASES))
async def test_lean_route_and_fastapi_route_answer_alike(
    pair: Pair, authority: Authority, admin_token: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    status, build = CASES[case]
    lean, routed = await _both(pair, build(admin_token), caplog)
    assert lean.response.status_code == status, lean.response.text
    if status >= 400:
        assert lean.response.headers["content-type"] == PROBLEM
    await _assert_same(lean, routed, authority, admin_token, pair)


async def test_scoped_tokens_alike(
    pair: Pair, authority: Authority, admin_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A read token is refused and an issue token signs, the same way on both sides (token.use rows included)."""
    read = authority.create_token(scope="read").token
    lean, routed = await _both(pair, {"json": {"csr": SVC_CSR}, "headers": bearer(read)}, caplog)
    assert lean.response.status_code == 403
    await _assert_same(lean, routed, authority, admin_token, pair)

    issue = authority.create_token(scope="issue", uses=5).token
    lean, routed = await _both(pair, {"json": {"csr": SVC_CSR}, "headers": bearer(issue)}, caplog)
    assert lean.response.status_code == 201
    _uses_left(lean, routed, 4, 3)
    await _assert_same(lean, routed, authority, admin_token, pair)


async def test_enrollment_token_alike(
    pair: Pair, authority: Authority, admin_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An enrollment token's names: a CSR for other names is refused alike, one for its names signed alike."""
    enrol = authority.create_token(cn="svc.example.com", sans=["svc.example.com"], uses=2).token
    other = csr_pem(p256(), "svc.example.com", ["other.example.com"]).decode()
    lean, routed = await _both(pair, {"json": {"csr": other}, "headers": bearer(enrol)}, caplog)
    assert lean.response.status_code == 403
    await _assert_same(lean, routed, authority, admin_token, pair)

    own = csr_pem(p256(), "svc.example.com", ["svc.example.com"]).decode()
    lean, routed = await _both(pair, {"json": {"csr": own}, "headers": bearer(enrol)}, caplog)
    assert lean.response.status_code == 201, lean.response.text
    _uses_left(lean, routed, 1, 0)
    await _assert_same(lean, routed, authority, admin_token, pair)


async def test_renewal_over_tls_alike(
    pair: Pair,
    authority: Authority,
    admin_token: str,
    issue_holder: Callable[..., Holder],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A holder renews with its TLS client certificate (from the scope, as uvicorn gives it): both sides take
    it from there, allow its own names and refuse others."""
    holder = issue_holder("alice", ["alice", "alice@example.com"])
    pair.present(cert_pem(holder.certificate).decode())
    own = csr_pem(p256(), "alice", ["alice@example.com"]).decode()
    lean, routed = await _both(pair, {"json": {"csr": own}}, caplog)
    assert lean.response.status_code == 201, lean.response.text
    await _assert_same(lean, routed, authority, admin_token, pair)

    wider = csr_pem(p256(), "alice", ["bob"]).decode()
    lean, routed = await _both(pair, {"json": {"csr": wider}}, caplog)
    assert lean.response.status_code == 403
    await _assert_same(lean, routed, authority, admin_token, pair)

    authority.revoke(holder.serial, reason=None, caller=authority.authenticate_token(admin_token))
    lean, routed = await _both(pair, {"json": {"csr": own}}, caplog)
    assert lean.response.status_code == 403 and lean.response.json()["title"] == "Certificate revoked"
    await _assert_same(lean, routed, authority, admin_token, pair)


async def test_renewal_token_alike(
    pair: Pair,
    authority: Authority,
    admin_token: str,
    issue_holder: Callable[..., Holder],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server certificate renews with a renewal token (a JWS its key signed): both sides accept a fresh one,
    refuse a replay and a revoked certificate's, with the same answers, audit rows and log lines."""
    holder = issue_holder("web.internal", ["web.internal"], profile="server")

    def token() -> str:
        audience = f"{authority.public_url}/csr"
        jti = secrets.token_hex(8)
        return build_renewal_token(holder.key, holder.certificate, audience=audience, now=authority.clock(), jti=jti)

    own = csr_pem(p256(), "web.internal", ["web.internal"]).decode()
    lean = await _send(pair, True, {"json": {"csr": own}, "headers": bearer(first := token())}, caplog)
    routed = await _send(pair, False, {"json": {"csr": own}, "headers": bearer(second := token())}, caplog)
    assert first != second and lean.response.status_code == 201, lean.response.text
    await _assert_same(lean, routed, authority, admin_token, pair)
    # each token again: a replay, refused alike (each side's token on the other)
    lean = await _send(pair, True, {"json": {"csr": own}, "headers": bearer(second)}, caplog)
    routed = await _send(pair, False, {"json": {"csr": own}, "headers": bearer(first)}, caplog)
    assert lean.response.status_code == 401 and "used already" in lean.response.json()["detail"]
    await _assert_same(lean, routed, authority, admin_token, pair)

    authority.revoke(holder.serial, reason=None, caller=authority.authenticate_token(admin_token))
    lean = await _send(pair, True, {"json": {"csr": own}, "headers": bearer(token())}, caplog)
    routed = await _send(pair, False, {"json": {"csr": own}, "headers": bearer(token())}, caplog)
    assert lean.response.status_code == 403 and lean.response.json()["title"] == "Certificate revoked"
    await _assert_same(lean, routed, authority, admin_token, pair)


async def test_other_requests_go_to_the_router(pair: Pair, admin_token: str) -> None:
    """LeanDispatch takes only full matches of its routes: another method gets the router's 405, other paths
    their own routes."""
    for method, path, status in (("GET", "/csr", 405), ("GET", "/healthz", 200), ("POST", "/tokens", 201)):
        response = await pair.lean.http.request(method, path, headers=bearer(admin_token), json={"scope": "read"})
        assert response.status_code == status, response.text
        if status == 405:  # the router's answer for a route matched but for its method
            assert response.headers["allow"] == "POST" and response.headers["content-type"] == PROBLEM
        else:
            assert getattr(pair.lean.probe.last_route, "path", None) == path
    # a trailing slash: the router's redirect to /csr
    response = await pair.lean.http.post("/csr/", headers=bearer(admin_token), json={"csr": SVC_CSR})
    assert response.status_code == 307 and response.headers["location"].endswith("/csr")


async def test_rate_limit_alike(
    pair: Pair,
    authority: Authority,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """429 with the same Retry-After: the clock stands still, so both sides compute the same wait."""
    frozen = authority.clock()
    monkeypatch.setattr(authority, "clock", lambda: frozen)
    monkeypatch.setattr(authority, "issue_rate_per_minute", 1)
    token = authority.create_token(scope="issue").token
    authority.sign_csr(SVC_CSR.encode(), caller=authority.authenticate_token(token))
    lean, routed = await _both(pair, {"json": {"csr": SVC_CSR}, "headers": bearer(token)}, caplog)
    assert lean.response.status_code == 429 and lean.response.headers["retry-after"] == "60"
    await _assert_same(lean, routed, authority, admin_token, pair)


@pytest.fixture
async def proxied(authority: Authority, settings: Settings) -> AsyncIterator[Pair]:
    """The app as `serve` builds it behind a proxy at 127.0.0.1 (httpx.ASGITransport's client address)."""
    behind = settings.model_copy(update={"trusted_proxies": ["127.0.0.1/32"]})
    async with (
        _side(create_app(behind, authority=authority)) as lean,
        _side(plain(create_app(behind, authority=authority))) as fastapi_side,
    ):
        yield Pair(lean, fastapi_side, authority)


async def test_behind_a_proxy_alike(
    proxied: Pair,
    authority: Authority,
    admin_token: str,
    issue_holder: Callable[..., Holder],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The forwarded client address goes into the audit, and a forwarded client certificate renews, alike."""
    forwarded = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
    lean, routed = await _both(
        proxied, {"json": {"csr": SVC_CSR}, "headers": {**bearer(admin_token), **forwarded}}, caplog
    )
    assert lean.response.status_code == 201
    assert [row["client_address"] for row in lean.audit] == ["203.0.113.9"]
    await _assert_same(lean, routed, authority, admin_token, proxied)

    holder = issue_holder("alice", ["alice"])
    header = {"X-SSL-Client-Cert": urllib.parse.quote(cert_pem(holder.certificate).decode())}
    own = csr_pem(p256(), "alice").decode()
    lean, routed = await _both(proxied, {"json": {"csr": own}, "headers": header}, caplog)
    assert lean.response.status_code == 201, lean.response.text
    await _assert_same(lean, routed, authority, admin_token, proxied)

    unreadable = {"X-SSL-Client-Cert": "-----BEGIN%20CERTIFICATE-----nope"}
    lean, routed = await _both(proxied, {"json": {"csr": own}, "headers": unreadable}, caplog)
    assert lean.response.status_code == 401
    await _assert_same(lean, routed, authority, admin_token, proxied)


async def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


async def test_unexpected_error_answered_alike(
    pair: Pair,
    authority: Authority,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug past the checks: the same 500 problem, which says nothing of the bug."""
    monkeypatch.setattr(authority, "sign_csr_async", _boom)
    lean, routed = await _both(pair, {"json": {"csr": SVC_CSR}, "headers": bearer(admin_token)}, caplog)
    assert lean.response.status_code == 500 and "boom" not in lean.response.text
    await _assert_same(lean, routed, authority, admin_token, pair)


async def test_unexpected_error_reaches_the_server_alike(
    authority: Authority, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For an unhandled error Starlette's ServerErrorMiddleware sends the 500 problem, then re-raises to the
    server: uvicorn logs "Exception in ASGI application" with the traceback and closes the connection (its
    response had started). A LeanRoute renders handled errors itself, so it must let this one go up too."""
    monkeypatch.setattr(authority, "sign_csr_async", _boom)
    outcomes: list[str] = []
    for app in (create_app(authority=authority), plain(create_app(authority=authority))):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
            try:
                response = await http.post("/csr", json={"csr": SVC_CSR}, headers=bearer(admin_token))
                outcomes.append(f"answered {response.status_code}, nothing raised")
            except RuntimeError as exc:
                outcomes.append(f"raised {exc!r} to the server")
    lean, route = outcomes
    assert lean == route == "raised RuntimeError('boom') to the server", outcomes
