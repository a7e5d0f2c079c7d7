"""Who may call what: every endpoint against every kind of caller, with the status each must get.

The table is the authority; `test_every_route_has_a_row` makes a new endpoint without a row fail.
Expectations follow /work/shared/CONTRACT.md ("who may call"): 401 when there are no usable credentials
(none, used up, expired), 403 when a known caller lacks the right, 2xx where it is allowed, and 200 for
everyone on the public endpoints, which never look at credentials.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount

from service.app import create_app
from service.authority import Authority
from service.authority.acme.renewal import cert_id
from service.ca.issue import issuer_id
from service.datadir.build import build_authority
from service.datadir.prepare import prepare
from service.settings import Settings
from tests.api.conftest import Holder, bearer
from tests.conftest import ApiClient, authority_at, make_settings
from tests.helpers import ForeignCA, csr_pem, p256

pytestmark = pytest.mark.anyio

# --- the callers ----------------------------------------------------------------------------------

CALLERS: tuple[str, ...] = (
    "none",  # no credentials at all
    "admin",  # admin token
    "issue",  # issue token
    "revoke",  # revoke token
    "read",  # read token
    "enrollment",  # enrollment token for alice + alice.example.com, used for other names
    "used_up",  # an admin token with uses=1, spent once
    "expired",  # an admin token whose ttl has run out
    "holder",  # the target certificate's own holder, over mTLS
    "other_cert",  # another client's valid certificate
    "revoked_cert",  # a revoked client certificate
    "foreign_cert",  # a client certificate from another CA
)

# --- the matrix -----------------------------------------------------------------------------------
# Columns, in CALLERS order:
#   none admin issue revoke read enroll used_up expired holder other revoked foreign
ALL_200 = (200,) * len(CALLERS)
ALL_303 = (303,) * len(CALLERS)
ACME_400 = (400,) * len(CALLERS)  # a body that is no JWS: malformed, whoever sends it
ACME_SIGNED = (
    "new-account", "new-order", "revoke-cert", "key-change", "account/{account_id}", "account/{account_id}/orders",
    "order/{order_id}", "order/{order_id}/finalize", "authz/{authz_id}", "chall/{challenge_id}", "cert/{serial}",
)
MATRIX: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "/csr"): (401, 201, 201, 403, 403, 403, 401, 401, 201, 403, 403, 403),
    ("GET", "/certs"): (401, 200, 403, 403, 200, 403, 401, 401, 403, 403, 403, 403),
    ("GET", "/certs/{serial}"): (401, 200, 403, 403, 200, 403, 401, 401, 200, 403, 403, 403),
    ("POST", "/certs/{serial}/revoke"): (401, 200, 403, 200, 403, 403, 401, 401, 200, 403, 403, 403),
    ("POST", "/pkcs12"): (401, 201, 201, 403, 403, 403, 401, 401, 403, 403, 403, 403),
    ("POST", "/tokens"): (401, 201, 403, 403, 403, 403, 401, 401, 403, 403, 403, 403),
    ("GET", "/tokens"): (401, 200, 403, 403, 403, 403, 401, 401, 403, 403, 403, 403),
    ("DELETE", "/tokens/{token_id}"): (401, 204, 403, 403, 403, 403, 401, 401, 403, 403, 403, 403),
    ("GET", "/audit"): (401, 200, 403, 403, 403, 403, 401, 401, 403, 403, 403, 403),
    # /whoami reads only the TLS client certificate: a bearer token is no identity there
    ("GET", "/whoami"): (401, 401, 401, 401, 401, 401, 401, 401, 200, 200, 403, 403),
    ("POST", "/ocsp"): ALL_200,
    ("GET", "/ocsp/{encoded}"): ALL_200,
    ("GET", "/ca"): ALL_200,
    ("GET", "/ca.crt"): ALL_200,
    ("GET", "/crl"): ALL_200,
    ("GET", "/crl.pem"): ALL_200,
    ("GET", "/crl/{issuer_id}"): ALL_200,
    ("GET", "/ca.crt/{issuer_id}"): ALL_200,
    ("GET", "/healthz"): ALL_200,
    # the web console (service/web): only its session cookie opens it; a bearer token or a client certificate is
    # no console credential, so every page sends them to the login form (tests/web has the session callers)
    ("GET", "/ui/"): ALL_303,
    ("GET", "/ui/login"): ALL_200,
    ("POST", "/ui/login"): (403,) * len(CALLERS),  # no login CSRF token
    ("POST", "/ui/logout"): ALL_303,
    ("GET", "/ui/certs"): ALL_303,
    ("GET", "/ui/certs/{serial}"): ALL_303,
    ("GET", "/ui/certs/{serial}/pem"): ALL_303,
    ("POST", "/ui/certs/{serial}/revoke"): ALL_303,
    ("GET", "/ui/expiring"): ALL_303,
    ("GET", "/ui/tokens"): ALL_303,
    ("POST", "/ui/tokens"): ALL_303,
    ("POST", "/ui/tokens/{token_id}/delete"): ALL_303,
    ("GET", "/ui/pkcs12"): ALL_303,
    ("POST", "/ui/pkcs12"): ALL_303,
    ("GET", "/ui/audit"): ALL_303,
    ("GET", "/ui/static/console.css"): ALL_200,
    ("GET", "/readyz"): ALL_200,
    ("GET", "/metrics"): (401, 200, 403, 403, 200, 403, 401, 401, 403, 403, 403, 403),
    # ACME (RFC 8555): a JWS is the only credential; a token or client certificate changes nothing
    ("GET", "/acme/directory"): ALL_200,
    ("GET", "/acme/new-nonce"): (204,) * len(CALLERS),
    ("HEAD", "/acme/new-nonce"): ALL_200,
    ("GET", "/acme/renewal-info/{cert_id}"): ALL_200,
    **{("POST", f"/acme/{path}"): ACME_400 for path in ACME_SIGNED},
    ("POST", "/acme/eab"): (401, 201, 403, 403, 403, 403, 401, 401, 403, 403, 403, 403),
}


# --- what each endpoint is sent -------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Made fresh for every case, so that revocations and deletions never leak into another case."""

    holder: Holder  # a certificate for cn "alice", the object of /certs/{serial} and of the OCSP question
    issuer: x509.Certificate
    token_id: str | None  # a throwaway token, the object of DELETE /tokens/{token_id}

    def ocsp_request(self) -> bytes:
        builder = ocsp.OCSPRequestBuilder().add_certificate(self.holder.certificate, self.issuer, hashes.SHA1())
        return builder.build().public_bytes(Encoding.DER)


Request = dict[str, Any]


def _alice_csr() -> Request:
    # CN alice and no SAN: the holder may renew it; the enrollment token (alice + alice.example.com) may not
    return {"json": {"csr": csr_pem(p256(), "alice").decode()}}


def _not_a_jws() -> Request:
    return {"content": b"{}", "headers": {"Content-Type": "application/jose+json"}}


REQUESTS: dict[tuple[str, str], Callable[[Target], Request]] = {
    ("POST", "/csr"): lambda t: _alice_csr(),
    ("GET", "/certs"): lambda t: {},
    ("GET", "/certs/{serial}"): lambda t: {},
    ("POST", "/certs/{serial}/revoke"): lambda t: {"json": {"reason": "superseded"}},
    ("POST", "/pkcs12"): lambda t: {"json": {"cn": "alice", "password": "correct horse"}},
    ("POST", "/tokens"): lambda t: {"json": {"scope": "read"}},
    ("GET", "/tokens"): lambda t: {},
    ("DELETE", "/tokens/{token_id}"): lambda t: {},
    ("GET", "/audit"): lambda t: {},
    ("POST", "/ocsp"): lambda t: {"content": t.ocsp_request(), "headers": {"Content-Type": "application/ocsp-request"}},
    ("GET", "/ocsp/{encoded}"): lambda t: {},
    ("GET", "/whoami"): lambda t: {},
    ("GET", "/ca"): lambda t: {},
    ("GET", "/acme/directory"): lambda t: {},
    ("GET", "/acme/new-nonce"): lambda t: {},
    ("HEAD", "/acme/new-nonce"): lambda t: {},
    ("GET", "/acme/renewal-info/{cert_id}"): lambda t: {},
    **{("POST", f"/acme/{path}"): lambda t: _not_a_jws() for path in ACME_SIGNED},
    ("POST", "/acme/eab"): lambda t: {"json": {}},
    ("GET", "/ca.crt"): lambda t: {},
    ("GET", "/crl"): lambda t: {},
    ("GET", "/crl.pem"): lambda t: {},
    ("GET", "/crl/{issuer_id}"): lambda t: {},
    ("GET", "/ca.crt/{issuer_id}"): lambda t: {},
    ("GET", "/healthz"): lambda t: {},
    ("GET", "/ui/"): lambda t: {},
    ("GET", "/ui/login"): lambda t: {},
    ("POST", "/ui/login"): lambda t: {"data": {"token": "pca_0000000000000000_x"}},
    ("POST", "/ui/logout"): lambda t: {"data": {}},
    ("GET", "/ui/certs"): lambda t: {},
    ("GET", "/ui/certs/{serial}"): lambda t: {},
    ("GET", "/ui/certs/{serial}/pem"): lambda t: {},
    ("POST", "/ui/certs/{serial}/revoke"): lambda t: {"data": {"reason": "superseded"}},
    ("GET", "/ui/expiring"): lambda t: {},
    ("GET", "/ui/tokens"): lambda t: {},
    ("POST", "/ui/tokens"): lambda t: {"data": {"scope": "read"}},
    ("POST", "/ui/tokens/{token_id}/delete"): lambda t: {"data": {}},
    ("GET", "/ui/pkcs12"): lambda t: {},
    ("POST", "/ui/pkcs12"): lambda t: {"data": {"cn": "alice", "password": "correct horse"}},
    ("GET", "/ui/audit"): lambda t: {},
    ("GET", "/ui/static/console.css"): lambda t: {},
    ("GET", "/readyz"): lambda t: {},
    ("GET", "/metrics"): lambda t: {},
}


def _url(template: str, target: Target) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "serial":
            return target.holder.serial
        if name == "token_id" and target.token_id is not None:
            return target.token_id
        if name == "issuer_id":
            return issuer_id(target.issuer)
        if name == "encoded":
            return base64.b64encode(target.ocsp_request()).decode()
        if name == "cert_id":
            return cert_id(target.holder.certificate)
        if name in ("account_id", "order_id", "authz_id", "challenge_id"):
            return "unknown"
        raise AssertionError(f"no value for {{{name}}} in {template}")

    return re.sub(r"\{(\w+)\}", value, template)


# --- one CA for the whole module; fresh targets per case ------------------------------------------


@dataclass(frozen=True)
class Fixed:
    """Credentials no case can change: unlimited tokens, spent or expired ones, and other certificates."""

    authority: Authority
    admin: str
    issue: str
    revoke: str
    read: str
    used_up: str
    expired: str
    other_cert: bytes
    revoked_cert: bytes
    foreign_cert: bytes


def _issue(authority: Authority, cn: str, sans: list[str] | None = None) -> Holder:
    key = p256()
    issued = authority.issue_for_key(key.public_key(), cn=cn, sans=sans or [], profile="client")
    return Holder(key, issued.certificate)


@pytest.fixture(scope="module")
def matrix_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("matrix") / "data")


@pytest.fixture(scope="module")
def fixed(matrix_settings: Settings, foreign_ca: ForeignCA) -> Iterator[Fixed]:
    prepared = prepare(matrix_settings)
    assert prepared.admin_token is not None
    authority = build_authority(matrix_settings)
    admin_caller = authority.authenticate_token(prepared.admin_token)

    used_up = authority.create_token(scope="admin", uses=1).token
    authority.issue_for_key(p256().public_key(), cn="spender", sans=[], caller=authority.authenticate_token(used_up))

    past = authority_at(matrix_settings, dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    try:
        expired = past.create_token(scope="admin", ttl=dt.timedelta(hours=1)).token
    finally:
        past.close()

    revoked = _issue(authority, "carol")
    authority.revoke(revoked.serial, reason="keyCompromise", caller=admin_caller)
    _, foreign = foreign_ca.issue_client("alice")
    yield Fixed(
        authority=authority,
        admin=prepared.admin_token,
        issue=authority.create_token(scope="issue").token,
        revoke=authority.create_token(scope="revoke").token,
        read=authority.create_token(scope="read").token,
        used_up=used_up,
        expired=expired,
        other_cert=_issue(authority, "bob").der,
        revoked_cert=revoked.der,
        foreign_cert=foreign.public_bytes(Encoding.DER),
    )
    authority.close()


@pytest.fixture(scope="module")
def matrix_app(fixed: Fixed) -> FastAPI:
    return create_app(authority=fixed.authority)  # one app: FastAPI analyses each route once per app


@pytest.fixture
async def client(matrix_app: FastAPI) -> AsyncIterator[ApiClient]:
    app = matrix_app
    # each case from an address of its own: the failed tokens of the others (used up, expired) must not add up to
    # the throttle of failed authentication (tests/api/test_auth_failures.py)
    address = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        client = ApiClient(http=http, app=app)
        client.as_peer(None)
        yield client
    app.dependency_overrides.clear()


def _credentials(caller: str, fixed: Fixed, target: Target) -> tuple[dict[str, str], bytes | None]:
    """The Authorization header and the client certificate (DER) this caller presents."""
    if caller == "none":
        return {}, None
    if caller in ("admin", "issue", "revoke", "read", "used_up", "expired"):
        return bearer(getattr(fixed, caller)), None
    if caller == "enrollment":  # fresh: should a case wrongly spend it, no other case would notice
        token = fixed.authority.create_token(scope=None, cn="alice", sans=["alice.example.com"]).token
        return bearer(token), None
    if caller == "holder":
        return {}, target.holder.der
    if caller in ("other_cert", "revoked_cert", "foreign_cert"):
        return {}, getattr(fixed, caller)
    raise AssertionError(f"no such caller {caller!r}")


CASES = [
    pytest.param(method, path, caller, status, id=f"{method} {path} as {caller}")
    for (method, path), statuses in MATRIX.items()
    for caller, status in zip(CALLERS, statuses, strict=True)
]


@pytest.mark.parametrize(("method", "path", "caller", "expected"), CASES)
async def test_matrix(client: ApiClient, fixed: Fixed, method: str, path: str, caller: str, expected: int) -> None:
    target = Target(
        holder=_issue(fixed.authority, "alice"),
        issuer=fixed.authority.ca_certificate,
        token_id=fixed.authority.create_token(scope="read").id if "{token_id}" in path else None,
    )
    headers, peer = _credentials(caller, fixed, target)
    client.as_peer(peer)
    request = REQUESTS[(method, path)](target)
    headers = {**request.pop("headers", {}), **headers}
    response = await client.http.request(method, _url(path, target), headers=headers, **request)
    shown = response.text[:500] if "json" in response.headers.get("content-type", "") else response.headers
    assert response.status_code == expected, f"{method} {path} as {caller}: {response.status_code} {shown}"
    if expected >= 400 and path.startswith("/ui/"):  # the console answers people: an HTML page
        assert response.headers["content-type"].startswith("text/html")
    elif expected >= 400:
        assert response.headers["content-type"] == "application/problem+json"
    elif path.startswith("/ocsp"):  # OCSP says 200 even to a bad request: the answer itself must be good
        answer = ocsp.load_der_ocsp_response(response.content)
        assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
        assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    if expected == 303:
        assert response.headers["location"] == "/ui/login"
    if expected == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _plain(path: str) -> str:
    """`/ocsp/{encoded:path}` -> `/ocsp/{encoded}`: the routing and the OpenAPI spellings agree."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def _walk(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield from ((method, _plain(prefix + route.path)) for method in route.methods or ())
        elif (router := getattr(route, "original_router", None)) is not None:  # FastAPI includes routers lazily
            yield from _walk(router.routes, prefix + getattr(getattr(route, "include_context", None), "prefix", ""))
        elif isinstance(route, Mount):
            yield from _walk(route.routes, prefix + route.path)


def _routes(tmp_path: Path) -> set[tuple[str, str]]:
    """Every API operation the app routes, and every one its OpenAPI document describes."""
    app = create_app(make_settings(tmp_path / "data"))  # the authority is built only at start-up: not here
    routed = set(_walk(app.routes))
    described = {(m.upper(), _plain(p)) for p, ops in app.openapi()["paths"].items() for m in ops}
    return routed | {(m, p) for m, p in described if m in HTTP_METHODS}


def test_every_route_has_a_row(tmp_path: Path) -> None:
    routes = _routes(tmp_path)
    assert routes, "no routes found: the guard would pass vacuously"
    missing = sorted(routes - MATRIX.keys())
    assert not missing, f"endpoints without a row in the authorization matrix: {missing}"
    stale = sorted(MATRIX.keys() - routes)
    assert not stale, f"rows for endpoints the app does not have: {stale}"


def test_every_row_is_complete() -> None:
    assert MATRIX.keys() == REQUESTS.keys()
    for endpoint, statuses in MATRIX.items():
        assert len(statuses) == len(CALLERS), f"{endpoint}: {len(statuses)} statuses for {len(CALLERS)} callers"
