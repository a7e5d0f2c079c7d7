"""POST /csr with a renewal token (a JWS signed by the certificate's own key): accepted once; every way it can be
wrong is refused with 401/403 problem+json. A refusal before the signature of a certificate we issued verifies is
logged and counted, never audited under the certificate the token names; the holder's refusals (revoked, expired,
replayed) are audited (tests/api/test_lean_routes.py holds the LeanRoute against FastAPI's own route for the
same requests)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from service.app import create_app
from service.authority import Authority, build_renewal_token
from service.ca.keys import PrivateKey
from service.db.models import AuditRecord
from service.errors import AuthenticationError
from tests.api.conftest import Holder, bearer
from tests.helpers import ForeignCA, csr_pem, p256

pytestmark = pytest.mark.anyio
AUDIENCE = "https://localhost:8443/csr"  # the default POCKETCA_PUBLIC_URL + /csr


@dataclass
class App:
    http: httpx.AsyncClient
    app: Any
    authority: Authority


@pytest.fixture
async def app(authority: Authority) -> AsyncIterator[App]:
    application = create_app(authority=authority)
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield App(http, application, authority)


def _server_holder(authority: Authority, key: PrivateKey | None = None, cn: str = "web.internal") -> Holder:
    key = key or p256()
    issued = authority.issue_for_key(key.public_key(), cn=cn, sans=[cn], profile="server")
    return Holder(key, issued.certificate)


def _token(holder: Holder, **overrides: Any) -> str:
    now = dt.datetime.now(dt.UTC)
    return build_renewal_token(
        holder.key, holder.certificate, audience=overrides.pop("audience", AUDIENCE), now=now, jti=secrets.token_hex(8)
    )


def _raw_token(
    holder: Holder, claims: dict[str, Any], *, algorithm: str = "ES256", key: Any = None, **header: Any
) -> str:
    x5c = [base64.b64encode(holder.certificate.public_bytes(Encoding.DER)).decode()]
    return jwt.encode(
        claims, key if key is not None else holder.key, algorithm=algorithm, headers={"x5c": x5c, **header}
    )


def _with_alg(token: str, algorithm: str, **fields: Any) -> str:
    """The same token with another header (the signature no longer matters: it is refused first)."""
    header = {**jwt.get_unverified_header(token), "alg": algorithm, **fields}
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return encoded + token[token.index(".") :]


def _claims(holder: Holder, **overrides: Any) -> dict[str, Any]:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims = {"aud": AUDIENCE, "iat": now, "exp": now + 120, "jti": secrets.token_hex(8)}
    claims["sub"] = format(holder.certificate.serial_number, "x")
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


async def _renew(app: App, token: str, holder: Holder, names: list[str] | None = None) -> httpx.Response:
    cn = names[0] if names else "web.internal"
    csr = csr_pem(p256(), cn, names or [cn]).decode()
    return await app.http.post("/csr", json={"csr": csr}, headers=bearer(token))


def _refusals(authority: Authority, serial: str) -> list[AuditRecord]:
    with authority.db.reader() as session:
        query = select(AuditRecord).where(AuditRecord.serial == serial, AuditRecord.outcome == "refused")
        return list(session.scalars(query))


async def test_a_server_certificate_renews_with_its_token(app: App) -> None:
    holder = _server_holder(app.authority)
    response = await _renew(app, _token(holder), holder)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["profile"] == "server" and body["sans"] == ["web.internal"] and body["serial"] != holder.serial
    with app.authority.db.reader() as session:
        row = session.scalars(select(AuditRecord).where(AuditRecord.serial == body["serial"])).one()
    assert (row.action, row.outcome, row.actor) == ("certificate.renew", "ok", f"cert:{holder.serial}")


KEYS: dict[str, Callable[[], Any]] = {
    "ES384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "RS256": lambda: rsa.generate_private_key(65537, 2048),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
}


@pytest.mark.parametrize("algorithm", list(KEYS))
async def test_each_key_type_signs_with_its_algorithm(app: App, algorithm: str) -> None:
    holder = _server_holder(app.authority, KEYS[algorithm]())
    token = _token(holder)
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    response = await _renew(app, token, holder)
    assert response.status_code == 201, response.text
    # and the algorithm of another key type is refused for it
    refused = await _renew(app, _with_alg(_token(holder), "ES256"), holder)
    assert refused.status_code == 401 and f"must be signed with {algorithm}" in refused.json()["detail"]


async def test_a_token_is_good_once(app: App) -> None:
    holder = _server_holder(app.authority)
    token = _token(holder)
    assert (await _renew(app, token, holder)).status_code == 201
    replay = await _renew(app, token, holder)
    assert replay.status_code == 401 and replay.headers["content-type"] == "application/problem+json"
    assert "used already" in replay.json()["detail"]
    assert [r.detail for r in _refusals(app.authority, holder.serial)] == [replay.json()["detail"]]


def test_two_requests_with_one_token_at_once_issue_one_certificate(authority: Authority) -> None:
    """Both pass the read check (as two workers would at the same moment); the spent jti's key decides."""
    holder = _server_holder(authority)
    token = _token(holder)
    first = authority.authenticate_renewal_token(token)
    second = authority.authenticate_renewal_token(token)
    csr = csr_pem(p256(), "web.internal", ["web.internal"])
    authority.sign_csr(csr, caller=first)
    with pytest.raises(AuthenticationError, match="used already"):
        authority.sign_csr(csr, caller=second)


ForgeToken = Callable[[Holder, ForeignCA], str]
_NOW = lambda: int(dt.datetime.now(dt.UTC).timestamp())  # noqa: E731


def _other_key_signs(holder: Holder, _: ForeignCA) -> str:
    return _raw_token(holder, _claims(holder), key=p256())


def _hs256_with_the_public_key(holder: Holder, _: ForeignCA) -> str:
    """The classic confusion: HMAC keyed with the public key. The header's alg is never trusted."""
    x5c = [base64.b64encode(holder.certificate.public_bytes(Encoding.DER)).decode()]
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "x5c": x5c}).encode()).rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps(_claims(holder)).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.AAAA"


def _alg_none(holder: Holder, _: ForeignCA) -> str:
    return _raw_token(holder, _claims(holder), algorithm="none", key="")


def _foreign(holder: Holder, foreign: ForeignCA) -> str:
    key, certificate = foreign.issue_client("web.internal")
    stranger = Holder(key, certificate)
    return _raw_token(stranger, _claims(stranger))


REFUSALS: list[tuple[str, ForgeToken, int, str]] = [
    ("expired", lambda h, _: _raw_token(h, _claims(h, iat=_NOW() - 400, exp=_NOW() - 100)), 401, "has expired"),
    ("too long", lambda h, _: _raw_token(h, _claims(h, exp=_NOW() + 3600)), 401, "at most 5 minutes"),
    ("future", lambda h, _: _raw_token(h, _claims(h, iat=_NOW() + 600, exp=_NOW() + 700)), 401, "in the future"),
    ("wrong aud", lambda h, _: _raw_token(h, _claims(h, aud="https://other.example/csr")), 401, "addressed elsewhere"),
    ("no jti", lambda h, _: _raw_token(h, _claims(h, jti=None)), 401, "'jti'"),
    ("wrong sub", lambda h, _: _raw_token(h, _claims(h, sub="1234")), 401, "sub is not the serial"),
    ("bad signature", _other_key_signs, 401, "signature does not verify"),
    ("ES384 for P-256", lambda h, _: _with_alg(_raw_token(h, _claims(h)), "ES384"), 401, "must be signed with ES256"),
    ("RS256 for P-256", lambda h, _: _with_alg(_raw_token(h, _claims(h)), "RS256"), 401, "must be signed with ES256"),
    ("HS256", _hs256_with_the_public_key, 401, "must be signed with ES256"),
    ("alg none", _alg_none, 401, "must be signed with ES256"),
    ("foreign CA", _foreign, 403, "not issued by this pocketca"),
    ("crit header", lambda h, _: _with_alg(_raw_token(h, _claims(h)), "ES256", crit=["exp"]), 401, "(crit, b64)"),
]


def _unauthenticated_refusals() -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value("pocketca_renewal_token_refusals_total", {"reason": "unauthenticated"})
    return value or 0.0


@pytest.mark.parametrize(("case", "forge", "status", "detail"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_refusals(
    app: App,
    foreign_ca: ForeignCA,
    case: str,
    forge: ForgeToken,
    status: int,
    detail: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each is refused before anyone is authenticated: logged and counted, and no audit row names the certificate
    in x5c (anyone can put anyone's certificate there)."""
    holder = _server_holder(app.authority)
    token = forge(holder, foreign_ca)
    counted = _unauthenticated_refusals()
    with caplog.at_level("INFO", logger="pocketca.auth"):
        response = await _renew(app, token, holder)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]
    segment = token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    named = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    assert _refusals(app.authority, format(named.serial_number, "x")) == []
    assert _unauthenticated_refusals() == counted + 1
    assert [r.getMessage() for r in caplog.records if "before authentication" in r.getMessage()] == [
        f"renewal token refused before authentication: {response.json()['detail']} (client 127.0.0.1)"
    ]


async def test_a_flood_of_junk_tokens_naming_a_certificate_writes_no_audit_row(app: App, admin_token: str) -> None:
    """A public certificate in x5c and a junk signature, many times: not one audit row, under that certificate or
    any other; each counted."""
    victim = _server_holder(app.authority)
    with app.authority.db.reader() as session:
        before = len(list(session.scalars(select(AuditRecord.id))))
    counted = _unauthenticated_refusals()
    for _ in range(50):
        forged = _raw_token(victim, _claims(victim), key=p256())
        assert (await _renew(app, forged, victim)).status_code == 401
    with app.authority.db.reader() as session:
        assert len(list(session.scalars(select(AuditRecord.id)))) == before
    assert _unauthenticated_refusals() == counted + 50
    scraped = (await app.http.get("/metrics", headers=bearer(admin_token))).text
    assert f'pocketca_renewal_token_refusals_total{{reason="unauthenticated"}} {counted + 50}' in scraped


async def test_a_revoked_certificate_cannot_renew(app: App, admin_token: str) -> None:
    holder = _server_holder(app.authority)
    token = _token(holder)
    await app.http.post(f"/certs/{holder.serial}/revoke", json={"reason": "keyCompromise"}, headers=bearer(admin_token))
    response = await _renew(app, token, holder)
    assert response.status_code == 403 and "revoked" in response.json()["detail"]
    assert len(_refusals(app.authority, holder.serial)) == 1


async def test_an_expired_certificate_cannot_renew(app: App, settings: Any) -> None:
    from tests.conftest import authority_at

    past = authority_at(settings, dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    try:
        key = p256()
        issued = past.issue_for_key(
            key.public_key(), cn="old.internal", sans=["old.internal"], profile="server", validity_days=1
        )
    finally:
        past.close()
    holder = Holder(key, issued.certificate)
    response = await _renew(app, _token(holder), holder, ["old.internal"])
    assert response.status_code == 403 and "expired" in response.json()["detail"]


async def test_the_names_stay_a_subset(app: App) -> None:
    holder = _server_holder(app.authority)
    response = await _renew(app, _token(holder), holder, ["web.internal", "other.internal"])
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_renewal_token_is_good_only_for_post_csr(app: App, admin_token: str) -> None:
    holder = _server_holder(app.authority)
    for method, path in (
        ("GET", f"/certs/{holder.serial}"),
        ("POST", f"/certs/{holder.serial}/revoke"),
        ("GET", "/audit"),
    ):
        response = await app.http.request(method, path, headers=bearer(_token(holder)))
        assert response.status_code == 401, (method, path, response.text)
        assert "only for POST /csr" in response.json()["detail"]
    stored = await app.http.get(f"/certs/{holder.serial}", headers=bearer(admin_token))
    assert stored.json()["status"] == "valid"
