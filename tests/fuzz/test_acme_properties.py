"""Property tests (hypothesis) for the ACME server, in process (ASGI): whatever a client sends to an ACME endpoint,
the answer is a success that fits the request or a 4xx ACME problem document (`urn:ietf:params:acme:error:*`,
application/problem+json, with a fresh Replay-Nonce), never a 5xx, never a traceback, and nothing logged as an
error.

Five properties: any bytes as the body of any JWS-signed endpoint; a correctly signed JWS whose protected header is
hostile (alg, nonce, url, kid, jwk, crit, b64, anything else); correctly signed requests whose payloads are hostile,
per endpoint (contacts, external account bindings, CSRs, revocation, keyChange...); newOrder's identifiers (IP
forms, zone ids, names, anything); hostile ids in every path. The requests that pass the signature check are
signed by a real account, so they reach the handlers.

Text here is any Unicode, lone surrogates and NUL included (often): the edge refuses those once for every route, as
an ACME error document; JSON nests at most a few levels (deeper nesting has its own tests at the edge).
"""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from service.app import create_app
from service.authority.acme.jws import b64encode
from tests.fuzz.conftest import FuzzEnv, count, saw_status
from tests.helpers import csr_pem, p256

pytestmark = pytest.mark.anyio

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
ACME = settings(
    max_examples=int(150 * SCALE),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
ACME_ERROR = "urn:ietf:params:acme:error:"
JOSE = {"Content-Type": "application/jose+json"}

# any text, and often a lone surrogate or a NUL somewhere in it (the edge refuses those for every route)
_PLAIN_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
JSON_TEXT = st.one_of(
    _PLAIN_TEXT, st.tuples(_PLAIN_TEXT, st.sampled_from(["\ud800", "\udfff", "\x00"]), _PLAIN_TEXT).map("".join)
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), JSON_TEXT)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(JSON_TEXT, inner, max_size=4)),
    max_leaves=12,
)


# --- the client -------------------------------------------------------------------------------------------------


class Key:
    """A P-256 account key that signs whatever header it is given (the header's alg is not checked here)."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        numbers = self.private.public_key().public_numbers()
        self.jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64encode(numbers.x.to_bytes(32, "big")),
            "y": b64encode(numbers.y.to_bytes(32, "big")),
        }

    def sign(self, protected: dict[str, Any], payload: bytes | None) -> bytes:
        header = b64encode(json.dumps(protected).encode())
        body = "" if payload is None else b64encode(payload)
        r, s = decode_dss_signature(self.private.sign(f"{header}.{body}".encode(), ec.ECDSA(hashes.SHA256())))
        signature = b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        return json.dumps({"protected": header, "payload": body, "signature": signature}).encode()


@dataclass
class Acme:
    http: httpx.AsyncClient
    base: str
    key: Key
    kid: str
    order: str  # a pending order of the account, with its authorization and challenge
    authz: str
    challenge: str
    certificate_der: bytes  # a certificate of this CA, not ordered over ACME

    def url(self, path: str) -> str:
        return f"{self.base}/acme/{path}"

    async def nonce(self) -> str:
        return (await self.http.head("/acme/new-nonce")).headers["Replay-Nonce"]

    async def post(self, url: str, payload: Any, *, jwk: bool = False, key: Key | None = None) -> httpx.Response:
        """Signed right: a fresh nonce, this URL, the account's kid (or a jwk)."""
        key = key or self.key
        header: dict[str, Any] = {"alg": "ES256", "nonce": await self.nonce(), "url": url}
        header.update({"jwk": key.jwk} if jwk else {"kid": self.kid})
        body = None if payload is None else json.dumps(payload).encode()
        return await self.http.post(url, content=key.sign(header, body), headers=JOSE)


@pytest.fixture(scope="module")
async def acme(fuzz_env: FuzzEnv) -> AsyncIterator[Acme]:
    """An account with an order (no rate limits: the properties make many) on the fuzz env's CA."""
    unlimited = {"acme_accounts_per_address": 0, "acme_orders_per_account": 0, "acme_orders_per_address": 0}
    settings_ = fuzz_env.settings.model_copy(update=unlimited)
    app = create_app(settings_, authority=fuzz_env.authority)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=settings_.public_url, timeout=30) as http:
        base = settings_.public_url
        key = Key()
        probe = Acme(http, base, key, "", "", "", "", b"")
        created = await probe.post(probe.url("new-account"), {"termsOfServiceAgreed": True}, jwk=True)
        assert created.status_code == 201, created.text
        probe.kid = created.headers["Location"]
        made = await probe.post(probe.url("new-order"), {"identifiers": [{"type": "dns", "value": "fuzz.internal"}]})
        assert made.status_code == 201, made.text
        authz = made.json()["authorizations"][0]
        challenge = (await probe.post(authz, None)).json()["challenges"][0]["url"]
        issued = fuzz_env.authority.issue_for_key(p256().public_key(), cn="other.internal", sans=["other.internal"])
        yield Acme(
            http, base, key, probe.kid, made.headers["Location"], authz, challenge,
            issued.certificate.public_bytes(Encoding.DER),
        )  # fmt: skip


def assert_acme(response: httpx.Response, *ok: int) -> None:
    """A success the caller expects, or a 4xx ACME problem with a fresh nonce."""
    saw_status(response.status_code)
    assert response.status_code < 500, (response.status_code, response.text[:600])
    assert b"Traceback" not in response.content
    if response.status_code in ok:
        return
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:600])
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body = response.json()
    assert body["status"] == response.status_code, body
    if response.status_code in (404, 405, 413) and not body["type"].startswith(ACME_ERROR):
        return  # the router's (a path that is no route, `..` resolved) or the limits', before any ACME handler
    assert body["type"].startswith(ACME_ERROR), body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert response.headers.get("Replay-Nonce"), response.headers  # every ACME answer, refusals at the edge too


SIGNED = ["new-account", "new-order", "revoke-cert", "key-change", "{order}", "{order}/finalize", "{authz}",
          "{challenge}", "{account}", "{account}/orders", "cert/0123"]  # fmt: skip


def endpoint(acme: Acme, template: str) -> str:
    path = template.format(
        order=acme.order.removeprefix(f"{acme.base}/acme/"),
        authz=acme.authz.removeprefix(f"{acme.base}/acme/"),
        challenge=acme.challenge.removeprefix(f"{acme.base}/acme/"),
        account=acme.kid.removeprefix(f"{acme.base}/acme/"),
    )
    return acme.url(path)


# --- 1. any body ---------------------------------------------------------------------------------------------------


@ACME
@given(
    template=st.sampled_from(SIGNED),
    body=st.one_of(
        st.binary(max_size=512),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {"protected": JSON_TEXT, "payload": JSON_TEXT, "signature": JSON_TEXT},
            optional={"header": JSON_VALUES, "signatures": JSON_VALUES},
        ).map(lambda v: json.dumps(v).encode()),
    ),
    content_type=st.sampled_from(["application/jose+json", "application/json", "text/plain", ""]),
)
async def test_acme_any_body_to_any_signed_endpoint(acme: Acme, template: str, body: bytes, content_type: str) -> None:
    count("acme: any body to a signed endpoint")
    url = endpoint(acme, template)
    note(repr((url, body, content_type)))
    response = await acme.http.post(url, content=body, headers={"Content-Type": content_type} if content_type else {})
    assert_acme(response)


# --- 2. hostile protected headers ---------------------------------------------------------------------------------

HEADER_FIELDS = {
    "alg": st.one_of(st.sampled_from(["ES256", "ES384", "RS256", "EdDSA", "none", "HS256", "PS256", ""]), SCALARS),
    "url": SCALARS,
    "kid": SCALARS,
    "jwk": st.one_of(JSON_VALUES, st.builds(lambda: Key().jwk)),
    "crit": st.one_of(st.lists(JSON_TEXT, max_size=3), JSON_VALUES),
    "b64": st.one_of(st.booleans(), JSON_VALUES),
    "nonce": SCALARS,
    "typ": JSON_VALUES,
    "x5c": JSON_VALUES,
}


@ACME
@given(
    template=st.sampled_from(["new-order", "new-account", "{order}", "revoke-cert", "key-change"]),
    changes=st.dictionaries(st.sampled_from(sorted(HEADER_FIELDS)), st.none(), max_size=4).flatmap(
        lambda keys: st.fixed_dictionaries({k: HEADER_FIELDS[k] for k in keys})
    ),
    dropped=st.sets(st.sampled_from(["alg", "nonce", "url", "kid"]), max_size=2),
    extra=st.dictionaries(JSON_TEXT, JSON_VALUES, max_size=2),
    payload=st.one_of(st.none(), JSON_VALUES.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64)),
)
async def test_acme_hostile_protected_headers(
    acme: Acme,
    template: str,
    changes: dict[str, Any],
    dropped: set[str],
    extra: dict[str, Any],
    payload: bytes | None,
) -> None:
    count("acme: hostile protected headers")
    url = endpoint(acme, template)
    header: dict[str, Any] = {**extra, "alg": "ES256", "nonce": await acme.nonce(), "url": url, "kid": acme.kid}
    header.update(changes)
    for name in dropped:
        header.pop(name, None)
    note(repr((url, header, payload)))
    response = await acme.http.post(url, content=acme.key.sign(header, payload), headers=JOSE)
    assert_acme(response, 200, 201)
    if {"crit", "b64"} & set(header):
        assert response.status_code >= 400 and response.json()["type"] != ACME_ERROR + "serverInternal"


# --- 3. hostile payloads, per endpoint ----------------------------------------------------------------------------

IP_TEXT = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: f"{a}%{'eth0'}"),
    st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
    st.sampled_from(["127.0.0.1", "::1", "0.0.0.0", "169.254.169.254", "fe80::1%eth0", "010.0.0.1", "1.2.3", "::"]),
)
DNS_TEXT = st.one_of(
    st.from_regex(r"\A(\*\.)?([a-z0-9-]{1,12}\.){0,3}[a-z]{1,8}\.?\Z"),
    st.sampled_from(["localhost", "LOCALHOST.", "a.localhost", "*.localhost", "*", "*.*.x", "xn--zz.example", "a..b"]),
    JSON_TEXT,
)
IDENTIFIER = st.one_of(
    st.fixed_dictionaries({"type": st.just("ip"), "value": st.one_of(IP_TEXT, DNS_TEXT)}),
    st.fixed_dictionaries({"type": st.just("dns"), "value": st.one_of(DNS_TEXT, IP_TEXT)}),
    st.fixed_dictionaries({"type": SCALARS, "value": SCALARS}),
    JSON_VALUES,
)


GOOD_CSR = b64encode(
    x509.load_pem_x509_csr(csr_pem(p256(), "fuzz.internal", ["fuzz.internal"])).public_bytes(Encoding.DER)
)
CSR_TEXT = st.one_of(st.just(GOOD_CSR), st.just(GOOD_CSR[:-4]), st.binary(max_size=64).map(b64encode), SCALARS)


OUR_CERTIFICATE = "<a certificate of this CA>"  # replaced by the fixture's when sent
PAYLOADS: dict[str, st.SearchStrategy[Any]] = {
    "new-order": st.one_of(
        st.fixed_dictionaries(
            {"identifiers": st.lists(IDENTIFIER, max_size=3)},
            optional={"profile": SCALARS, "notBefore": SCALARS, "notAfter": SCALARS, "replaces": SCALARS},
        ),
        JSON_VALUES,
    ),
    "{account}": st.fixed_dictionaries(
        {}, optional={"contact": st.one_of(st.lists(JSON_TEXT.map(lambda t: "mailto:" + t), max_size=5), JSON_VALUES),
                      "status": st.one_of(st.sampled_from(["valid", "revoked"]), SCALARS)}
    ),  # fmt: skip  (never "deactivated": the account must live on)
    "{order}/finalize": st.one_of(st.fixed_dictionaries({"csr": CSR_TEXT}), JSON_VALUES),
    "{authz}": st.one_of(st.fixed_dictionaries({"status": st.one_of(st.just("valid"), SCALARS)}), JSON_VALUES),
    "{challenge}": JSON_VALUES,
    "revoke-cert": st.fixed_dictionaries(
        {"certificate": st.one_of(st.just(OUR_CERTIFICATE), st.binary(max_size=64).map(b64encode), SCALARS)},
        optional={"reason": st.one_of(st.integers(-3, 12), SCALARS)},
    ),
    "key-change": st.one_of(
        JSON_VALUES,
        st.fixed_dictionaries({"protected": JSON_TEXT, "payload": JSON_TEXT, "signature": JSON_TEXT}),
    ),
    "new-account": st.fixed_dictionaries(
        {},
        optional={
            "contact": st.one_of(st.lists(JSON_TEXT.map(lambda t: "mailto:" + t), max_size=5), JSON_VALUES),
            "onlyReturnExisting": st.one_of(st.booleans(), SCALARS),
            "termsOfServiceAgreed": SCALARS,
            "externalAccountBinding": st.one_of(
                JSON_VALUES,
                st.fixed_dictionaries({"protected": JSON_TEXT, "payload": JSON_TEXT, "signature": JSON_TEXT}),
            ),
        },
    ),
}


@ACME
@given(case=st.one_of(*(st.tuples(st.just(name), payload) for name, payload in PAYLOADS.items())))
async def test_acme_hostile_payloads(acme: Acme, case: tuple[str, Any]) -> None:
    count("acme: hostile payloads per endpoint")
    template, payload = case
    url = endpoint(acme, template)
    if isinstance(payload, dict) and payload.get("certificate") == OUR_CERTIFICATE:
        payload = {**payload, "certificate": b64encode(acme.certificate_der)}
    note(repr((url, payload)))
    if template == "new-account":
        response = await acme.post(url, payload, jwk=True, key=Key())
    else:
        response = await acme.post(url, payload)
    assert_acme(response, 200, 201)


@ACME
@given(
    identifiers=st.lists(IDENTIFIER, min_size=1, max_size=6),
    profile=st.one_of(st.none(), st.sampled_from(["server", "client", "peer", "nope"]), SCALARS),
)
async def test_acme_hostile_identifiers(acme: Acme, identifiers: list[Any], profile: Any) -> None:
    """newOrder, the richest payload: whatever the identifiers, an order or an ACME problem, and an order holds
    only what the identifier policy lets through."""
    count("acme: hostile identifiers in newOrder")
    payload: dict[str, Any] = {"identifiers": identifiers}
    if profile is not None:
        payload["profile"] = profile
    note(repr(payload))
    response = await acme.post(acme.url("new-order"), payload)
    assert_acme(response, 201)
    if response.status_code == 201:
        for identifier in response.json()["identifiers"]:
            assert identifier["value"] not in ("127.0.0.1", "::1", "0.0.0.0", "localhost"), identifier
            assert "%" not in identifier["value"] and not identifier["value"].endswith("localhost"), identifier


# --- 4. hostile ids in paths --------------------------------------------------------------------------------------

PATH_TEXT = st.text(  # a URL holds bytes: no lone surrogate can be sent in one
    st.characters(exclude_categories=("Cs",), exclude_characters="/?#"), min_size=1, max_size=40
)


PATHS = ["order/{}", "order/{}/finalize", "authz/{}", "chall/{}", "cert/{}", "account/{}", "account/{}/orders",
         "renewal-info/{}"]  # fmt: skip
BASE64_IDS = st.binary(min_size=1, max_size=32).map(lambda b: base64.urlsafe_b64encode(b).decode())


@ACME
@given(template=st.sampled_from(PATHS), value=st.one_of(PATH_TEXT, BASE64_IDS))
async def test_acme_hostile_ids_in_paths(acme: Acme, template: str, value: str) -> None:
    count("acme: hostile ids in paths")
    path = "/acme/" + template.format(urllib.parse.quote(value, safe=""))
    note(repr(path))
    if template.startswith("renewal-info"):
        response = await acme.http.get(path)
        saw_status(response.status_code)
        assert response.status_code in (200, 400, 404), (response.status_code, response.text[:300])
        assert response.status_code == 200 or response.headers["content-type"] == "application/problem+json"
        return
    url = f"{acme.base}{path}"
    header = {"alg": "ES256", "nonce": await acme.nonce(), "url": url, "kid": acme.kid}
    response = await acme.http.post(path, content=acme.key.sign(header, None), headers=JOSE)
    assert_acme(response, 200)
