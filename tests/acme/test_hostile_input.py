"""Hostile input to the ACME server is an ACME error document, never a 500 (nor a 503 from PostgreSQL, which
stores no NUL): JSON nested 20,000 deep in the body, the protected header, the payload, keyChange's inner JWS
and the external account binding; lone surrogates in contacts and identifiers; a NUL in the nonce, the kid, the
EAB kid and every id in a path. Run on SQLite and on PostgreSQL (POCKETCA_TEST_DATABASE_URL)."""

from __future__ import annotations

import json

import pytest

from service.authority.acme.jws import b64encode
from tests.acme.conftest import JOSE, AcmeClient, assert_acme_problem, jws, new_key

pytestmark = pytest.mark.anyio

DEEP = b"[" * 20_000
SIGNED_PATHS = [
    "/acme/new-account",
    "/acme/new-order",
    "/acme/account/abc",
    "/acme/key-change",
    "/acme/order/abc",
    "/acme/order/abc/finalize",
    "/acme/authz/abc",
    "/acme/chall/abc",
    "/acme/cert/abc",
    "/acme/revoke-cert",
]


@pytest.mark.parametrize("path", SIGNED_PATHS)
async def test_a_body_nested_20000_deep_is_malformed_on_every_acme_post(acme_client: AcmeClient, path: str) -> None:
    response = await acme_client.http.post(path, content=DEEP, headers=JOSE)
    assert_acme_problem(response, 400, "malformed", "deeper than 32 levels")
    assert response.headers["Replay-Nonce"]  # refused at the edge, yet answered as every ACME answer (RFC 8555 6.5)


@pytest.mark.parametrize("path", ["/acme/new-account", "/acme/new-order", "/acme/order/abc/finalize"])
async def test_a_body_over_the_limit_is_an_acme_problem_with_a_nonce(acme_client: AcmeClient, path: str) -> None:
    response = await acme_client.http.post(path, content=b"{" + b" " * (70 * 1024) + b"}", headers=JOSE)
    assert_acme_problem(response, 413, "malformed", "over 65536 bytes")
    assert response.headers["Replay-Nonce"]  # a client retries with it instead of fetching a new one


@pytest.mark.parametrize("path", SIGNED_PATHS)
async def test_a_protected_header_nested_20000_deep_is_malformed(acme_client: AcmeClient, path: str) -> None:
    response = await acme_client.post_raw(path, jws(acme_client.key, DEEP, b"{}"))
    assert_acme_problem(response, 400, "malformed", "protected header")


@pytest.mark.parametrize("path", ["/acme/new-account", "/acme/new-order"])
async def test_a_payload_nested_20000_deep_is_malformed(acme_client: AcmeClient, path: str) -> None:
    if path != "/acme/new-account":
        await acme_client.register()
    response = await acme_client.post(path, DEEP)
    assert_acme_problem(response, 400, "malformed", "payload")


async def test_an_identifier_list_nested_deep_inside_the_payload_is_malformed(acme_client: AcmeClient) -> None:
    await acme_client.register()
    response = await acme_client.post("/acme/new-order", b'{"identifiers": ' + b"[" * 500 + b"]" * 500 + b"}")
    assert_acme_problem(response, 400, "malformed", "deeper than 32 levels")


async def test_key_changes_inner_jws_nested_deep_is_malformed(acme_client: AcmeClient) -> None:
    kid = await acme_client.register()
    new = new_key()
    header = {
        "alg": "ES256",
        "jwk": new.public_key().to_partial_json(),
        "url": await acme_client.url("/acme/key-change"),
    }
    for inner_header, inner_payload in [(DEEP, b"{}"), (json.dumps(header).encode(), DEEP)]:
        inner = jws(new, inner_header, inner_payload)
        response = await acme_client.post("/acme/key-change", json.dumps(inner).encode())
        assert_acme_problem(response, 400, "malformed", "not JSON we read")
    # and the account still works with its old key
    assert (await acme_client.post(kid.removeprefix(acme_client.base), None)).status_code == 200


async def test_an_external_account_binding_nested_deep_is_malformed(acme_client: AcmeClient) -> None:
    binding = jws(new_key(), DEEP, b"{}")  # the MAC is not checked before the header is read
    response = await acme_client.post("/acme/new-account", {"externalAccountBinding": binding})
    assert_acme_problem(response, 400, "malformed", "protected header")


async def test_a_lone_surrogate_in_a_contact_is_malformed_not_a_500(acme_client: AcmeClient) -> None:
    payload = b'{"termsOfServiceAgreed": true, "contact": ["mailto:\\ud800@x.example"]}'
    response = await acme_client.post("/acme/new-account", payload)
    assert_acme_problem(response, 400, "malformed", "lone surrogate")
    # no account was made for the key: it registers cleanly afterwards
    assert (await acme_client.post("/acme/new-account", {"contact": ["mailto:ops@x.example"]})).status_code == 201


async def test_a_lone_surrogate_in_an_identifier_is_malformed_not_a_500(acme_client: AcmeClient) -> None:
    await acme_client.register()
    payload = b'{"identifiers": [{"type": "dns", "value": "\\ud800.example"}]}'
    response = await acme_client.post("/acme/new-order", payload)
    assert_acme_problem(response, 400, "malformed", "lone surrogate")


async def test_a_nul_in_the_nonce_is_malformed(acme_client: AcmeClient) -> None:
    nonce = await acme_client.nonce()
    response = await acme_client.post("/acme/new-account", {}, nonce=nonce[:4] + "\x00" + nonce[4:])
    assert_acme_problem(response, 400, "malformed", "NUL")


async def test_a_nul_in_the_kid_is_malformed(acme_client: AcmeClient) -> None:
    kid = await acme_client.register()
    acme_client.kid = kid + "\x00"
    response = await acme_client.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": "a.example"}]})
    assert_acme_problem(response, 400, "malformed", "NUL")


async def test_a_nul_in_the_eab_kid_is_malformed(acme_client: AcmeClient) -> None:
    url = await acme_client.url("/acme/new-account")
    jwk = acme_client.key.public_key().to_partial_json()
    header = {"alg": "HS256", "kid": "eab\x00kid", "url": url}
    encoded = f"{b64encode(json.dumps(header).encode())}.{b64encode(json.dumps(jwk).encode())}"
    binding = {
        "protected": encoded.split(".")[0],
        "payload": encoded.split(".")[1],
        "signature": b64encode(b"\x00" * 32),
    }
    response = await acme_client.post("/acme/new-account", {"externalAccountBinding": binding})
    assert_acme_problem(response, 400, "malformed", "NUL")


@pytest.mark.parametrize(
    "path",
    [
        "/acme/account/%00",
        "/acme/account/%00/orders",
        "/acme/order/ab%00cd",
        "/acme/order/%00/finalize",
        "/acme/authz/%00",
        "/acme/chall/%00",
        "/acme/cert/%00",
    ],
)
async def test_a_nul_in_an_id_in_the_path_is_malformed(acme_client: AcmeClient, path: str) -> None:
    await acme_client.register()
    response = await acme_client.post(path, None)  # signed for exactly that URL, as a client copies it
    assert_acme_problem(response, 400, "malformed", "NUL")
    assert response.headers["Replay-Nonce"]  # refused at the edge, yet answered as every ACME answer (RFC 8555 6.5)


async def test_a_nul_in_the_renewal_info_id_is_malformed(acme_client: AcmeClient) -> None:
    response = await acme_client.http.get("/acme/renewal-info/a%00b")
    assert_acme_problem(response, 400, "malformed", "NUL")


# --- names nobody should get (issue 20 §4) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("*.com", "public suffix"),
        ("*.co.uk", "public suffix"),
        ("xn--zz.example", "IDNA 2008"),
        ("www.example.com..", "empty label"),
        ("www.example.com.", "empty label"),
        ("www.example.com\n", "not letters, digits and inner hyphens"),
    ],
)
async def test_new_order_rejects_names_nobody_should_get(acme_client: AcmeClient, value: str, says: str) -> None:
    await acme_client.register()
    response = await acme_client.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": value}]})
    document = assert_acme_problem(response, 400, "rejectedIdentifier", says)
    assert document["subproblems"][0]["identifier"] == {"type": "dns", "value": value}  # as sent, never shortened


async def test_new_order_takes_a_wildcard_above_a_registrable_domain(acme_client: AcmeClient) -> None:
    await acme_client.register()
    identifiers = [{"type": "dns", "value": "*.example.com"}, {"type": "dns", "value": "xn--bcher-kva.example"}]
    response = await acme_client.post("/acme/new-order", {"identifiers": identifiers})
    assert response.status_code == 201, response.text
    assert response.json()["identifiers"] == identifiers
