"""What the in-process ACME tests share: the app over httpx.ASGITransport with the authority's clock in the test's
hands, an account that signs its requests as an ACME client does, and a hand-made JWS for what no well-behaved
client sends (a protected header or payload of any bytes, any nonce, any kid)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import josepy as jose
import pytest
from acme import jws as acme_jws
from cryptography.hazmat.primitives.asymmetric import ec

from service.app import create_app
from service.authority import Authority
from service.authority.acme.jws import b64encode
from service.datadir.issuers import load_ca
from service.db.session import Database
from service.settings import Settings

BASE = "https://localhost:8443"  # POCKETCA_PUBLIC_URL's default: the ACME URLs are built from it
TESTSERVER = "https://testserver"  # httpx's own base: the hand-made JWS tests read the URLs from the directory


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


async def _acme(settings: Settings, **client: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Clock]]:
    clock = Clock()
    keystore, certificate = load_ca(settings)
    authority = Authority(
        Database(settings.sqlalchemy_url), keystore, certificate, public_url=settings.public_url, clock=clock
    )
    app = create_app(settings, authority=authority)
    transport = httpx.ASGITransport(app=app, **client)
    async with httpx.AsyncClient(transport=transport, base_url=settings.public_url) as http:
        yield http, clock
    authority.close()


class Account:
    def __init__(self, http: httpx.AsyncClient, base: str = BASE) -> None:
        self.http = http
        self.base = base
        self.key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
        self.kid: str | None = None

    def sign(self, url: str, payload: dict[str, Any] | None, nonce: str) -> bytes:
        body = b"" if payload is None else json.dumps(payload).encode()
        jws = acme_jws.JWS.sign(
            body, key=self.key, alg=jose.ES256, nonce=jose.decode_b64jose(nonce), url=url, kid=self.kid
        )
        return jws.json_dumps().encode()

    async def nonce(self) -> str:
        return (await self.http.head("/acme/new-nonce")).headers["Replay-Nonce"]

    async def post(self, url: str, payload: dict[str, Any] | None, **headers: str) -> httpx.Response:
        body = self.sign(url, payload, await self.nonce())
        return await self.http.post(url, content=body, headers={"Content-Type": "application/jose+json", **headers})

    async def register(self) -> httpx.Response:
        response = await self.post(f"{self.base}/acme/new-account", {"termsOfServiceAgreed": True})
        assert response.status_code == 201, response.text
        self.kid = response.headers["Location"]
        return response


async def settled(account: Account, challenge_url: str) -> dict[str, Any]:
    """The challenge once it is no longer processing (polled for up to 10 s)."""
    import anyio

    for _ in range(100):
        state: dict[str, Any] = (await account.post(challenge_url, None)).json()
        if state["status"] != "processing":
            break
        await anyio.sleep(0.1)
    return state


JOSE = {"Content-Type": "application/jose+json"}
ACME_ERROR = "urn:ietf:params:acme:error:"


def new_key() -> jose.JWKEC:
    return jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))


def jws(key: jose.JWK, protected: dict[str, Any] | bytes, payload: dict[str, Any] | bytes | None) -> dict[str, str]:
    """A flattened JWS signed with ES256 by `key`; `protected` and `payload` as given when they are bytes."""
    header = protected if isinstance(protected, bytes) else json.dumps(protected).encode()
    body = b"" if payload is None else payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64encode(header)}.{b64encode(body)}".encode()
    signature = jose.ES256.sign(key.key, signing_input)
    return {"protected": b64encode(header), "payload": b64encode(body), "signature": b64encode(signature)}


@dataclass
class AcmeClient:
    http: httpx.AsyncClient
    key: jose.JWKEC = field(default_factory=new_key)
    kid: str | None = None
    base: str = ""  # what the directory's URLs start with: the JWS 'url' must be one of them

    async def url(self, path: str) -> str:
        if not self.base:
            directory = (await self.http.get("/acme/directory")).json()
            self.base = directory["newNonce"].removesuffix("/acme/new-nonce")
        return self.base + path

    async def nonce(self) -> str:
        response = await self.http.head("/acme/new-nonce")
        assert response.status_code == 200, response.text
        return response.headers["Replay-Nonce"]

    async def header(self, path: str, **extra: Any) -> dict[str, Any]:
        header: dict[str, Any] = {"alg": "ES256", "nonce": await self.nonce(), "url": await self.url(path)}
        if self.kid is None:
            header["jwk"] = self.key.public_key().to_partial_json()
        else:
            header["kid"] = self.kid
        header.update(extra)
        return header

    async def post(self, path: str, payload: dict[str, Any] | bytes | None, **header: Any) -> httpx.Response:
        document = jws(self.key, await self.header(path, **header), payload)
        return await self.http.post(path, content=json.dumps(document), headers=JOSE)

    async def post_raw(self, path: str, document: object) -> httpx.Response:
        return await self.http.post(path, content=json.dumps(document), headers=JOSE)

    async def register(self) -> str:
        response = await self.post("/acme/new-account", {"termsOfServiceAgreed": True})
        assert response.status_code == 201, response.text
        self.kid = response.headers["Location"]
        return self.kid


@pytest.fixture
async def acme_http(authority: Authority) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(authority=authority)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TESTSERVER) as http:
        yield http


@pytest.fixture
def acme_client(acme_http: httpx.AsyncClient) -> AcmeClient:
    return AcmeClient(acme_http)


def assert_acme_problem(response: httpx.Response, status: int, kind: str, says: str | None = None) -> dict[str, Any]:
    """An ACME error document (RFC 8555 §6.7) with this status and type; `says` is in its detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document: dict[str, Any] = response.json()
    assert document["type"] == ACME_ERROR + kind, document
    assert document["status"] == status
    if says is not None:
        assert says in document["detail"], document
    return document
