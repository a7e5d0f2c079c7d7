"""Orders and authorizations expire, and the states in between say when to look again (in-process, through
the ASGI app, with the authority's clock moved forward)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx
import josepy as jose
import pytest
from acme import jws as acme_jws

from service.authority.acme.orders import ORDER_LIFETIME
from service.datadir.prepare import Prepared
from service.db.session import Database
from service.settings import Settings
from tests.acme.conftest import BASE, Account, Clock, _acme, settled

pytestmark = pytest.mark.anyio


@pytest.fixture
async def acme(settings: Settings, prepared: Prepared) -> AsyncIterator[tuple[httpx.AsyncClient, Clock]]:
    async for pair in _acme(settings):
        yield pair


async def test_a_pending_order_and_its_authorization_expire(acme: tuple[httpx.AsyncClient, Clock]) -> None:
    http, clock = acme
    account = Account(http)
    await account.register()
    created = await account.post(f"{BASE}/acme/new-order", {"identifiers": [{"type": "dns", "value": "x.acme.test"}]})
    assert created.status_code == 201
    order_url, authz_url = created.headers["Location"], created.json()["authorizations"][0]
    pending = await account.post(order_url, None)
    assert pending.json()["status"] == "pending" and pending.headers["Retry-After"] == "1"
    authz = await account.post(authz_url, None)
    assert authz.json()["status"] == "pending" and {c["type"] for c in authz.json()["challenges"]} == {
        "http-01", "dns-01", "tls-alpn-01"
    }  # fmt: skip

    clock.now += ORDER_LIFETIME + dt.timedelta(seconds=1)
    expired = await account.post(order_url, None)
    assert expired.json()["status"] == "invalid" and "expired" in expired.json()["error"]["detail"]
    assert (await account.post(authz_url, None)).json()["status"] == "expired"
    finalize = await account.post(f"{order_url}/finalize", {"csr": "AAAA"})
    assert finalize.status_code == 403 and finalize.json()["type"] == "urn:ietf:params:acme:error:orderNotReady"
    # a new order for the same name gets a new authorization, not the expired one
    again = await account.post(f"{BASE}/acme/new-order", {"identifiers": [{"type": "dns", "value": "x.acme.test"}]})
    assert again.json()["authorizations"] != [authz_url]


async def test_identifiers_are_checked_against_the_profile_at_new_order(acme: tuple[httpx.AsyncClient, Clock]) -> None:
    http, _ = acme
    account = Account(http)
    await account.register()
    url = f"{BASE}/acme/new-order"
    bad = await account.post(
        url, {"identifiers": [{"type": "dns", "value": "-bad-.test"}, {"type": "email", "value": "a@b"}]}
    )
    body = bad.json()
    assert bad.status_code == 400 and body["type"] == "urn:ietf:params:acme:error:compound"
    assert [p["type"].rsplit(":", 1)[1] for p in body["subproblems"]] == ["rejectedIdentifier", "unsupportedIdentifier"]
    dated = await account.post(
        url, {"identifiers": [{"type": "dns", "value": "a.test"}], "notAfter": "2030-01-01T00:00:00Z"}
    )
    assert dated.status_code == 400 and "profile sets the validity" in dated.json()["detail"]
    wildcard = await account.post(url, {"identifiers": [{"type": "dns", "value": "*.w.test"}]})
    authz = await account.post(wildcard.json()["authorizations"][0], None)
    assert authz.json()["wildcard"] is True and [c["type"] for c in authz.json()["challenges"]] == ["dns-01"]
    assert authz.json()["identifier"] == {"type": "dns", "value": "w.test"}


async def test_a_challenge_answered_is_processing_with_retry_after_then_invalid_with_the_cause(
    acme: tuple[httpx.AsyncClient, Clock],
) -> None:

    http, _ = acme
    account = Account(http)
    await account.register()
    created = await account.post(f"{BASE}/acme/new-order", {"identifiers": [{"type": "dns", "value": "no.invalid"}]})
    authz_url = created.json()["authorizations"][0]
    challenge = next(c for c in (await account.post(authz_url, None)).json()["challenges"] if c["type"] == "http-01")
    answered = await account.post(challenge["url"], {})
    assert answered.json()["status"] == "processing" and answered.headers["Retry-After"] == "1"
    assert f'<{authz_url}>;rel="up"' in answered.headers.get_list("Link")
    state = await settled(account, challenge["url"])
    assert state["status"] == "invalid" and state["error"]["type"] == "urn:ietf:params:acme:error:dns"
    assert (await account.post(authz_url, None)).json()["status"] == "invalid"
    order = (await account.post(created.headers["Location"], None)).json()
    assert order["status"] == "invalid" and order["error"]["detail"].startswith("no.invalid: http-01: cannot resolve")


async def test_a_database_outage_is_a_503_problem_not_a_500(settings: Settings, prepared: Prepared) -> None:
    from sqlalchemy import text

    async for http, _ in _acme(settings):
        account = Account(http)
        await account.register()
        db = Database(settings.sqlalchemy_url)
        with db.engine.begin() as connection:
            connection.execute(text("DROP TABLE acme_nonces"))  # what a broken database looks like to us
        db.dispose()
        fresh = await http.head("/acme/new-nonce")
        assert fresh.status_code == 200  # handing out a nonce needs no database
        url = f"{BASE}/acme/new-order"
        nonce = jose.decode_b64jose(fresh.headers["Replay-Nonce"])
        jws = acme_jws.JWS.sign(b"{}", key=account.key, alg=jose.ES256, nonce=nonce, url=url, kid=account.kid)
        signed = await http.post(
            url, content=jws.json_dumps().encode(), headers={"Content-Type": "application/jose+json"}
        )
        assert signed.status_code == 503 and signed.headers["Retry-After"] == "5"  # spending it does
        assert signed.headers["content-type"] == "application/problem+json"
        assert signed.json()["type"] == "urn:ietf:params:acme:error:serverInternal"


async def test_a_challenge_left_processing_by_a_lost_worker_is_validated_again(
    acme: tuple[httpx.AsyncClient, Clock], settings: Settings
) -> None:
    """A worker took the challenge (processing) and died before validating it: while that could still be a
    validation under way, polls leave it be; past STALE_PROCESSING the next poll validates it again, once."""
    import anyio
    from sqlalchemy import func, select

    from service.authority.acme.authorizations import STALE_PROCESSING
    from service.db.acme import AcmeChallengeRecord
    from service.db.models import AuditRecord

    http, clock = acme
    account = Account(http)
    await account.register()
    created = await account.post(f"{BASE}/acme/new-order", {"identifiers": [{"type": "dns", "value": "lost.invalid"}]})
    authz_url = created.json()["authorizations"][0]
    challenge = next(c for c in (await account.post(authz_url, None)).json()["challenges"] if c["type"] == "http-01")
    db = Database(settings.sqlalchemy_url)
    with db.writer() as session:  # what the lost worker left behind
        record = session.get(AcmeChallengeRecord, challenge["url"].rsplit("/", 1)[-1])
        assert record is not None
        record.status, record.processing_since = "processing", clock.now

    def validations() -> int:
        with db.reader() as session:
            return session.scalar(select(func.count()).where(AuditRecord.action == "acme.challenge")) or 0

    for _ in range(3):  # recent: it may still be validating somewhere; nothing starts again
        for url in (challenge["url"], authz_url):
            state = (await account.post(url, None)).json()
            assert state["status"] == ("processing" if url == challenge["url"] else "pending")
        await anyio.sleep(0.2)
    assert validations() == 0

    clock.now += STALE_PROCESSING + dt.timedelta(seconds=1)
    assert (await account.post(authz_url, None)).json()["status"] == "pending"  # taken again: validating
    state = await settled(account, challenge["url"])
    assert state["status"] == "invalid" and state["error"]["type"] == "urn:ietf:params:acme:error:dns"
    assert (await account.post(authz_url, None)).json()["status"] == "invalid"
    assert validations() == 1  # validated once, though polled many times
    db.dispose()
