"""What the in-process ACME tests share: the app over httpx.ASGITransport with the authority's clock in the test's
hands, and an account that signs its requests as an ACME client does."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import josepy as jose
from acme import jws as acme_jws
from cryptography.hazmat.primitives.asymmetric import ec

from service import bootstrap
from service.api.app import create_app
from service.authority import Authority
from service.db.session import Database
from service.settings import Settings

BASE = "https://localhost:8443"  # POCKETCA_PUBLIC_URL's default: the ACME URLs are built from it


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


async def _acme(settings: Settings, **client: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Clock]]:
    clock = Clock()
    keystore, certificate = bootstrap.load_ca(settings)
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
