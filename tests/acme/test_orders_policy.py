"""newOrder and newAccount against what a hostile client sends (in-process, through the ASGI app): identifiers for
the CA's own machine and the special-purpose blocks, the service's own names whatever the settings, more than
100 identifiers, and more accounts and orders than the rate limits allow. And the URLs: every one from
POCKETCA_PUBLIC_URL, whatever the Host header says."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from service.datadir.prepare import prepare
from service.settings import Settings
from tests.acme.conftest import BASE, Account, Clock, _acme
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio
ACME_ERROR = "urn:ietf:params:acme:error:"
WINDOW = dt.timedelta(hours=3)  # Boulder's, and the limits' (service.authority.acme.limits)
# the list: each was accepted by newOrder
HOSTILE = [
    ("ip", "127.0.0.1"),
    ("ip", "::1"),
    ("ip", "0.0.0.0"),
    ("ip", "::ffff:127.0.0.1"),
    ("ip", "169.254.169.254"),
    ("ip", "fe80::1%eth0"),
    ("dns", "localhost"),
    ("dns", "printer.localhost"),
]


async def app_for(tmp_path: Path, **overrides: object) -> AsyncIterator[tuple[httpx.AsyncClient, Clock, Settings]]:
    settings = make_settings(tmp_path / "data", **overrides)
    prepare(settings)
    async for http, clock in _acme(settings):
        yield http, clock, settings


@pytest.fixture
async def acme(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Clock, Settings]]:
    async for triple in app_for(tmp_path):
        yield triple


def order(*identifiers: tuple[str, str]) -> dict[str, Any]:
    return {"identifiers": [{"type": kind, "value": value} for kind, value in identifiers]}


async def new_order(account: Account, *identifiers: tuple[str, str]) -> httpx.Response:
    return await account.post(f"{BASE}/acme/new-order", order(*identifiers))


@pytest.mark.parametrize(("kind", "value"), HOSTILE, ids=[v for _, v in HOSTILE])
async def test_new_order_refuses_the_cas_own_machine_and_special_purpose_addresses(
    acme: tuple[httpx.AsyncClient, Clock, Settings], kind: str, value: str
) -> None:
    http, _, _ = acme
    account = Account(http)
    await account.register()
    refused = await new_order(account, (kind, value))
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert body["type"] == ACME_ERROR + "rejectedIdentifier", body
    assert body["subproblems"][0]["identifier"]["type"] == kind


async def test_each_refused_identifier_is_named_in_a_compound_problem_and_private_ones_pass(
    acme: tuple[httpx.AsyncClient, Clock, Settings],
) -> None:
    http, _, _ = acme
    account = Account(http)
    await account.register()
    refused = await new_order(account, ("dns", "web.internal"), *HOSTILE)
    body = refused.json()
    assert refused.status_code == 400 and body["type"] == ACME_ERROR + "compound"
    assert [p["identifier"]["value"] for p in body["subproblems"]] == [
        "127.0.0.1", "::1", "0.0.0.0", "::ffff:7f00:1", "169.254.169.254", "fe80::1%eth0", "localhost",
        "printer.localhost",
    ]  # fmt: skip
    assert {p["type"] for p in body["subproblems"]} == {ACME_ERROR + "rejectedIdentifier"}
    private = await new_order(account, ("dns", "web.internal"), ("ip", "10.0.0.7"), ("ip", "fd00::7"))
    assert private.status_code == 201, private.text


async def test_the_services_own_names_are_refused_whatever_the_settings(tmp_path: Path) -> None:
    """Everything allowed, nothing denied: still not the names and addresses of the service's own certificate --
    those configured now, and those the certificate in the data dir carries (made with other names earlier)."""
    first = make_settings(tmp_path / "data", server_names=["ca.example.internal", "10.0.0.53", "localhost"])
    prepare(first)  # the service's certificate is made for these
    wide_open = make_settings(
        tmp_path / "data", acme_allow="0.0.0.0/0,::/0,.", acme_deny="", server_names=["localhost", "127.0.0.1", "::1"]
    )
    async for http, _ in _acme(wide_open):
        account = Account(http)
        await account.register()
        own = [("dns", "localhost"), ("ip", "127.0.0.1"), ("ip", "::1"), ("ip", "::ffff:127.0.0.1"),
               ("dns", "ca.example.internal"), ("ip", "10.0.0.53"), ("dns", "*.example.internal")]  # fmt: skip
        for kind, value in own:
            refused = await new_order(account, (kind, value))
            assert refused.status_code == 400, (value, refused.text)
            assert refused.json()["type"] == ACME_ERROR + "rejectedIdentifier"
            assert "this service's own" in refused.json()["detail"], refused.json()
        allowed = await new_order(account, ("ip", "127.0.0.5"), ("dns", "printer.localhost"))
        assert allowed.status_code == 201, allowed.text  # the lists were opened wide: the rest passes


async def test_an_order_holds_at_most_100_identifiers(acme: tuple[httpx.AsyncClient, Clock, Settings]) -> None:
    """Boulder's number and answer (malformed), counted once duplicates are removed."""
    http, _, _ = acme
    account = Account(http)
    await account.register()
    many = [("dns", f"n{i}.many.internal") for i in range(101)]
    refused = await new_order(account, *many)
    assert refused.status_code == 400 and refused.json()["type"] == ACME_ERROR + "malformed"
    assert "more than 100 identifiers" in refused.json()["detail"]
    repeated = await new_order(account, *[("dns", "same.internal")] * 150, ("dns", "SAME.internal"))
    assert repeated.status_code == 201 and len(repeated.json()["identifiers"]) == 1
    hundred = await new_order(account, *many[:100])
    assert hundred.status_code == 201 and len(hundred.json()["authorizations"]) == 100


async def test_new_accounts_are_rate_limited_per_address(tmp_path: Path) -> None:
    async for http, clock, _ in app_for(tmp_path, acme_accounts_per_address=3):
        for _ in range(3):
            await Account(http).register()
        limited = await Account(http).post(f"{BASE}/acme/new-account", {"termsOfServiceAgreed": True})
        assert limited.status_code == 429 and limited.json()["type"] == ACME_ERROR + "rateLimited"
        assert int(limited.headers["Retry-After"]) == WINDOW.total_seconds()
        assert limited.headers["Replay-Nonce"] and "127.0.0.1" in limited.json()["detail"]
        clock.now += dt.timedelta(hours=1)
        assert int((await Account(http).post(f"{BASE}/acme/new-account", {})).headers["Retry-After"]) == 7200
        clock.now += dt.timedelta(hours=2, seconds=1)  # the first left the window
        await Account(http).register()


async def test_new_orders_are_rate_limited_per_account_and_per_address(tmp_path: Path) -> None:
    async for http, clock, _ in app_for(tmp_path, acme_orders_per_account=2, acme_orders_per_address=3):
        first, second = Account(http), Account(http)
        await first.register()
        await second.register()
        for i in range(2):
            assert (await new_order(first, ("dns", f"a{i}.internal"))).status_code == 201
        limited = await new_order(first, ("dns", "a9.internal"))
        assert limited.status_code == 429 and "this account" in limited.json()["detail"]
        assert int(limited.headers["Retry-After"]) == WINDOW.total_seconds()
        assert (await new_order(second, ("dns", "b0.internal"))).status_code == 201  # its own account's first
        by_address = await new_order(second, ("dns", "b1.internal"))  # but the address's fourth
        assert by_address.status_code == 429 and "from 127.0.0.1" in by_address.json()["detail"]
        clock.now += WINDOW + dt.timedelta(seconds=1)
        assert (await new_order(first, ("dns", "a9.internal"))).status_code == 201


async def test_every_url_comes_from_the_public_url_not_the_host_header(
    acme: tuple[httpx.AsyncClient, Clock, Settings],
) -> None:
    http, _, settings = acme
    evil = {"Host": "evil.example"}
    directory = await http.get("/acme/directory", headers=evil)
    urls = [v for v in directory.json().values() if isinstance(v, str)]
    assert urls and all(u.startswith(f"{settings.public_url}/acme/") for u in urls), urls
    account = Account(http)
    created = await account.post(f"{BASE}/acme/new-account", {"termsOfServiceAgreed": True}, **evil)
    assert created.status_code == 201 and created.headers["Location"].startswith(f"{settings.public_url}/acme/")
    assert f"<{settings.public_url}/acme/directory>" in created.headers["Link"]
    account.kid = created.headers["Location"]
    made = await account.post(f"{BASE}/acme/new-order", order(("dns", "h.internal")), **evil)
    assert made.headers["Location"].startswith(settings.public_url)
    assert all(u.startswith(settings.public_url) for u in [made.json()["finalize"], *made.json()["authorizations"]])
    for path in ("/ui", "/certs/", "/acme/directory/"):  # the framework's own redirects too
        redirected = await http.get(path, headers=evil)
        assert redirected.status_code == 307 and redirected.headers["Location"].startswith(settings.public_url)
    # a JWS addressed to the Host header's URL is for another server
    forged = Account(http)
    misaddressed = await forged.post("https://evil.example/acme/new-account", {}, **evil)
    assert misaddressed.status_code == 401 and misaddressed.json()["type"] == ACME_ERROR + "unauthorized"


async def test_handing_out_nonces_writes_nothing(acme: tuple[httpx.AsyncClient, Clock, Settings]) -> None:
    http, _, settings = acme
    account = Account(http)
    await account.register()
    from service.db.session import Database

    db = Database(settings.sqlalchemy_url)

    def rows() -> int:
        with db.reader() as session:
            return int(session.scalar(text("SELECT count(*) FROM acme_nonces")) or 0)

    before = rows()
    nonces = {(await http.head("/acme/new-nonce")).headers["Replay-Nonce"] for _ in range(100)}
    nonces |= {(await http.get("/acme/new-nonce")).headers["Replay-Nonce"] for _ in range(20)}
    assert len(nonces) == 120 and rows() == before
    spent = await account.post(f"{BASE}/acme/new-order", order(("dns", "n.internal")))
    assert spent.status_code == 201 and rows() == before + 1  # spent with the order, in its transaction
    db.dispose()


async def test_finalize_asks_the_identifier_policy_again(tmp_path: Path) -> None:
    """An order made and authorized while an address was allowed is not finalized once the operator denies it
    (POCKETCA_ACME_DENY changed, the service restarted): finalize checks the policy again, as newOrder did."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from service.authority.acme.jws import b64encode
    from service.db.session import Database

    settings = make_settings(tmp_path / "data")
    prepare(settings)
    async for http, _ in _acme(settings):
        account = Account(http)
        await account.register()
        made = await new_order(account, ("ip", "10.9.9.9"))
        assert made.status_code == 201, made.text
        order_url, finalize_url = made.headers["Location"], made.json()["finalize"]
    db = Database(settings.sqlalchemy_url)
    try:
        with db.writer() as session:  # as if its http-01 challenge had been met
            session.execute(text("UPDATE acme_authorizations SET status = 'valid'"))
            session.execute(text("UPDATE acme_orders SET status = 'ready'"))
    finally:
        db.dispose()  # an open pooled connection left to the collector warns, and warnings are errors
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("10.9.9.9"))]), False)
        .sign(key, hashes.SHA256())
    )
    payload = {"csr": b64encode(csr.public_bytes(serialization.Encoding.DER))}
    denied = make_settings(tmp_path / "data", acme_deny="10.9.9.9/32")
    async for http, _ in _acme(denied):
        account.http = http
        refused = await account.post(finalize_url, payload)
        assert refused.status_code == 400, refused.text
        assert refused.json()["type"] == ACME_ERROR + "rejectedIdentifier", refused.json()
        assert "10.9.9.9" in refused.json()["detail"], refused.json()
        assert (await account.post(order_url, None)).json()["status"] == "ready"  # nothing was issued
