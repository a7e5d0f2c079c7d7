"""The ACME protocol's edges, through certbot's `acme` library (its client and its JWS) against a real
`pocketca serve`: the refusals RFC 8555 names (bad nonce, wrong url, unknown kid, unsupported alg, jwk where
kid belongs, a CSR with other names, a failing challenge), and profiles, IP identifiers, ARI, revocation by the
certificate's key, key rollover and deactivation. challtestsrv answers http-01 and DNS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import josepy as jose
import pytest
from acme import challenges, client, messages
from acme import jws as acme_jws
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.name import _ASN1Type as T
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from service.authority.acme.renewal import cert_id
from service.ca.inspect import format_serial
from tests.e2e.acme_env import CHALLENGE_IP, AcmeServer, ChallTestSrv, challtestsrv, start_acme_server
from tests.hostile import csr_with

ACME_ERROR = "urn:ietf:params:acme:error:"


@pytest.fixture(scope="module")
def dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChallTestSrv]:
    with challtestsrv(tmp_path_factory.mktemp("dns"), http01=True) as server:
        yield server


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory, dns: ChallTestSrv) -> Iterator[AcmeServer]:
    assert dns.http01_port is not None
    server = start_acme_server(
        tmp_path_factory.mktemp("acme") / "data",
        dns,
        http_port=dns.http01_port,
        extra_env={"POCKETCA_ISSUE_RATE_PER_MINUTE": "1"},  # per account: one certificate a minute
    )
    yield server
    for net in OPEN:  # requests keeps connections alive: close them, or serve waits for them at shutdown
        net.session.close()
    server.live.stop()


OPEN: list[client.ClientNetwork] = []


def ec_key() -> jose.JWKEC:
    return jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))


def new_client(acme: AcmeServer, key: jose.JWK | None = None) -> client.ClientV2:
    key = key or ec_key()
    net = client.ClientNetwork(key, alg=jose.ES256, verify_ssl=str(acme.live.ca_file), user_agent="pocketca-tests")
    OPEN.append(net)
    directory = client.ClientV2.get_directory(acme.directory, net)
    acme_client = client.ClientV2(directory, net)
    account = acme_client.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    net.account = account
    return acme_client


def csr_for(names: list[str], key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    builder = x509.CertificateSigningRequestBuilder(x509.Name([])).add_extension(
        x509.SubjectAlternativeName(general), critical=False
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def authorize_http01(acme_client: client.ClientV2, order: messages.OrderResource, dns: ChallTestSrv) -> None:
    """Answers each authorization's http-01 through challtestsrv's HTTP server (the configured ACME port)."""
    for authz in order.authorizations:
        if authz.body.status == messages.STATUS_VALID:
            continue
        challenge = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01))
        response, validation = challenge.response_and_validation(acme_client.net.key)
        dns.add_http01(challenge.chall.encode("token"), validation)
        acme_client.answer_challenge(challenge, response)


def deadline() -> dt.datetime:
    return dt.datetime.now() + dt.timedelta(seconds=60)


# --- raw JWS, for what no well-behaved client sends -------------------------------------------------


def nonce(acme: AcmeServer) -> str:
    with acme.live.client() as http:
        return http.head("/acme/new-nonce").headers["Replay-Nonce"]


def signed(
    payload: dict[str, Any] | None,
    key: jose.JWK,
    url: str,
    *,
    nonce_value: str | None,
    kid: str | None = None,
    alg: jose.JWASignature = jose.ES256,
) -> bytes:
    body = b"" if payload is None else json.dumps(payload).encode()
    raw_nonce = jose.decode_b64jose(nonce_value) if nonce_value is not None else None
    return acme_jws.JWS.sign(body, key=key, alg=alg, nonce=raw_nonce, url=url, kid=kid).json_dumps().encode()


def post(acme: AcmeServer, url: str, body: bytes) -> httpx.Response:
    with acme.live.client() as http:
        return http.post(url, content=body, headers={"Content-Type": "application/jose+json"})


def problem(response: httpx.Response, kind: str, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document: dict[str, Any] = response.json()
    assert document["type"] == ACME_ERROR + kind, document
    assert response.headers["Replay-Nonce"]  # a fresh nonce with every refusal
    return document


# --- the JWS rules ---------------------------------------------------------------------------------


def test_a_bad_nonce_is_refused_with_a_fresh_one_that_works(acme: AcmeServer) -> None:
    key = ec_key()
    url = f"{acme.live.url}/acme/new-account"
    payload = {"termsOfServiceAgreed": True}
    refused = post(acme, url, signed(payload, key, url, nonce_value=jose.encode_b64jose(b"x" * 24)))
    fresh = problem(refused, "badNonce", 400) and refused.headers["Replay-Nonce"]
    created = post(acme, url, signed(payload, key, url, nonce_value=fresh))
    assert created.status_code == 201, created.text
    replayed = post(acme, url, signed(payload, key, url, nonce_value=fresh))  # single use
    problem(replayed, "badNonce", 400)
    missing = post(acme, url, signed(payload, key, url, nonce_value=None))
    problem(missing, "badNonce", 400)


def test_the_url_must_be_the_request_url(acme: AcmeServer) -> None:
    key = ec_key()
    url = f"{acme.live.url}/acme/new-account"
    other = f"{acme.live.url}/acme/new-order"
    response = post(acme, url, signed({"termsOfServiceAgreed": True}, key, other, nonce_value=nonce(acme)))
    assert "not this request's URL" in problem(response, "unauthorized", 401)["detail"]


def test_an_unknown_kid_and_a_jwk_where_kid_belongs_are_refused(acme: AcmeServer) -> None:
    key = ec_key()
    url = f"{acme.live.url}/acme/new-order"
    order = {"identifiers": [{"type": "dns", "value": "a.acme.test"}]}
    nobody = f"{acme.live.url}/acme/account/nope"
    unknown = post(acme, url, signed(order, key, url, nonce_value=nonce(acme), kid=nobody))
    problem(unknown, "accountDoesNotExist", 400)
    embedded = post(acme, url, signed(order, key, url, nonce_value=nonce(acme)))  # jwk, not kid
    assert "kid" in problem(embedded, "malformed", 400)["detail"]


@pytest.mark.parametrize("alg", [jose.PS256, jose.RS512], ids=["PS256", "RS512"])
def test_only_es256_es384_rs256_and_eddsa_are_accepted(acme: AcmeServer, alg: jose.JWASignature) -> None:
    key = jose.JWKRSA(key=rsa.generate_private_key(65537, 2048))
    url = f"{acme.live.url}/acme/new-account"
    response = post(acme, url, signed({"termsOfServiceAgreed": True}, key, url, nonce_value=nonce(acme), alg=alg))
    problem(response, "badSignatureAlgorithm", 400)
    accepted = post(acme, url, signed({}, key, url, nonce_value=nonce(acme), alg=jose.RS256))
    assert accepted.status_code == 201, accepted.text


def test_bodies_over_the_limit_and_other_media_types_are_refused(acme: AcmeServer) -> None:
    url = f"{acme.live.url}/acme/new-account"
    with acme.live.client() as http:
        big = http.post(url, content=b"x" * (70 * 1024), headers={"Content-Type": "application/jose+json"})
        assert big.status_code == 413
        plain = http.post(url, content=b"{}", headers={"Content-Type": "application/json"})
    problem(plain, "malformed", 415)


def test_only_return_existing_and_contacts(acme: AcmeServer) -> None:
    key = ec_key()
    url = f"{acme.live.url}/acme/new-account"
    absent = post(acme, url, signed({"onlyReturnExisting": True}, key, url, nonce_value=nonce(acme)))
    problem(absent, "accountDoesNotExist", 400)
    bad = post(acme, url, signed({"contact": ["tel:+1555"]}, key, url, nonce_value=nonce(acme)))
    problem(bad, "unsupportedContact", 400)
    created = post(acme, url, signed({"contact": ["mailto:ops@acme.test"]}, key, url, nonce_value=nonce(acme)))
    assert created.status_code == 201 and created.json()["contact"] == ["mailto:ops@acme.test"]
    again = post(acme, url, signed({"onlyReturnExisting": True}, key, url, nonce_value=nonce(acme)))
    assert again.status_code == 200 and again.headers["Location"] == created.headers["Location"]


# --- orders ----------------------------------------------------------------------------------------


def test_a_csr_with_other_names_is_refused_and_the_order_can_still_be_finalized(
    acme: AcmeServer, dns: ChallTestSrv
) -> None:
    acme_client = new_client(acme)
    order = acme_client.new_order(csr_for(["csr.acme.test"]))
    assert order.body.profile == "server"  # POCKETCA_ACME_PROFILE's default
    authorize_http01(acme_client, order, dns)
    order = acme_client.poll_authorizations(order, deadline())
    with pytest.raises(messages.Error) as refused:
        acme_client.finalize_order(order.update(csr_pem=csr_for(["csr.acme.test", "other.acme.test"])), deadline())
    assert refused.value.typ == ACME_ERROR + "badCSR" and "exactly" in (refused.value.detail or "")
    done = acme_client.finalize_order(order.update(csr_pem=csr_for(["csr.acme.test"])), deadline())
    assert done.body.status == messages.STATUS_VALID and "BEGIN CERTIFICATE" in (done.fullchain_pem or "")


def test_finalize_reencodes_the_subjects_string_types_or_refuses_them(
    acme: AcmeServer, dns: ChallTestSrv, tmp_path: Path
) -> None:
    """An OCTET STRING CN is a badCSR; a BMPString CN and a UTF8String emailAddress are issued as UTF8String and
    IA5String, in a certificate OpenSSL loads."""
    name = "types.acme.test"
    acme_client = new_client(acme)
    order = acme_client.new_order(csr_for([name]))
    authorize_http01(acme_client, order, dns)
    order = acme_client.poll_authorizations(order, deadline())
    octet = csr_with([(NameOID.COMMON_NAME, name, T.OctetString)], [name])
    with pytest.raises(messages.Error) as refused:
        acme_client.finalize_order(order.update(csr_pem=octet), deadline())
    assert refused.value.typ == ACME_ERROR + "badCSR" and "OCTET STRING" in (refused.value.detail or "")
    asked = [(NameOID.COMMON_NAME, name, T.BMPString), (NameOID.EMAIL_ADDRESS, "ops@acme.test", T.UTF8String)]
    mixed = csr_with(asked, [name])
    done = acme_client.finalize_order(order.update(csr_pem=mixed), deadline())
    leaf = x509.load_pem_x509_certificates((done.fullchain_pem or "").encode())[0]
    assert [(a.value, a._type) for a in leaf.subject] == [(name, T.UTF8String), ("ops@acme.test", T.IA5String)]
    (tmp_path / "leaf.pem").write_text(done.fullchain_pem or "")
    loaded = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "leaf.pem"), "-noout", "-subject"],
                            capture_output=True, text=True)  # fmt: skip
    assert loaded.returncode == 0 and "ops@acme.test" in loaded.stdout, loaded.stderr


def test_a_failing_challenge_makes_the_authorization_and_order_invalid_with_the_cause(acme: AcmeServer) -> None:
    acme_client = new_client(acme)
    order = acme_client.new_order(csr_for(["fails.acme.test"]))
    authz = order.authorizations[0]
    challenge = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01))
    acme_client.answer_challenge(challenge, challenge.response(acme_client.net.key))  # nothing served for this token
    with pytest.raises(Exception):  # noqa: B017  (the acme library raises ValidationError)
        acme_client.poll_authorizations(order, deadline())
    polled, _ = acme_client.poll(authz)
    body = polled.body
    assert body.status == messages.STATUS_INVALID
    failed = next(c for c in body.challenges if c.chall.typ == "http-01")
    assert failed.error.typ in (ACME_ERROR + "incorrectResponse", ACME_ERROR + "unauthorized")
    assert f"http://fails.acme.test:{acme.http_port}/.well-known/acme-challenge/" in failed.error.detail
    state = acme_client._post_as_get(order.uri).json()
    assert state["status"] == "invalid" and "fails.acme.test" in state["error"]["detail"]


def test_profiles_ip_identifiers_ari_and_revocation_by_the_certificate_key(acme: AcmeServer, dns: ChallTestSrv) -> None:
    with acme.live.client() as http:
        meta = http.get("/acme/directory").json()["meta"]
    assert {"client", "server", "peer"} <= set(meta["profiles"])
    acme_client = new_client(acme)
    with pytest.raises(messages.Error) as unknown:
        acme_client.new_order(csr_for(["p.acme.test"]), profile="nope")
    assert unknown.value.typ == ACME_ERROR + "invalidProfile"

    key = ec.generate_private_key(ec.SECP256R1())
    csr = csr_for([CHALLENGE_IP, "peer.acme.test"], key)
    order = acme_client.new_order(csr, profile="peer")
    kinds = {
        a.body.identifier.typ.name: [c.to_partial_json()["type"] for c in a.body.challenges]
        for a in order.authorizations
    }
    assert kinds["ip"] == ["http-01", "tls-alpn-01"]  # RFC 8738: no dns-01 for an address
    authorize_http01(acme_client, order, dns)
    done = acme_client.poll_and_finalize(order, deadline())
    certificate = x509.load_pem_x509_certificates(done.fullchain_pem.encode())[0]
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == [CHALLENGE_IP]

    # a second order for the same names reuses the valid authorizations
    again = acme_client.new_order(csr, profile="peer")
    assert {a.uri for a in again.authorizations} == {a.uri for a in order.authorizations}
    assert again.body.status == messages.STATUS_READY
    with pytest.raises(messages.Error) as limited:  # the same account, within the minute
        acme_client.finalize_order(again, deadline())
    assert limited.value.typ == ACME_ERROR + "rateLimited" and "account" in (limited.value.detail or "")

    with acme.live.client() as http:
        ari = http.get(f"/acme/renewal-info/{cert_id(certificate)}")
    assert ari.status_code == 200 and int(ari.headers["Retry-After"]) > 0
    window = ari.json()["suggestedWindow"]
    start = dt.datetime.fromisoformat(window["start"])
    assert certificate.not_valid_before_utc < start < dt.datetime.fromisoformat(window["end"])
    assert dt.datetime.fromisoformat(window["end"]) < certificate.not_valid_after_utc

    # revokeCert signed by the certificate's own key (jwk), not by the account
    url = f"{acme.live.url}/acme/revoke-cert"
    der = jose.encode_b64jose(certificate.public_bytes(serialization.Encoding.DER))
    stranger = post(acme, url, signed({"certificate": der}, ec_key(), url, nonce_value=nonce(acme)))
    problem(stranger, "unauthorized", 403)
    revoked = post(
        acme, url, signed({"certificate": der, "reason": 1}, jose.JWKEC(key=key), url, nonce_value=nonce(acme))
    )
    assert revoked.status_code == 200, revoked.text
    with acme.live.client(headers={"Authorization": f"Bearer {acme.live.admin_token}"}) as http:
        record = http.get(f"/certs/{format_serial(certificate.serial_number)}").json()
        ari_after = http.get(f"/acme/renewal-info/{cert_id(certificate)}").json()["suggestedWindow"]
    assert record["status"] == "revoked" and record["revocation_reason"] == "keyCompromise"
    assert dt.datetime.fromisoformat(ari_after["end"]) < dt.datetime.now(dt.UTC)  # renew now
    twice = post(acme, url, signed({"certificate": der}, jose.JWKEC(key=key), url, nonce_value=nonce(acme)))
    problem(twice, "alreadyRevoked", 400)


def test_key_rollover_and_deactivation(acme: AcmeServer) -> None:
    old = ec_key()
    acme_client = new_client(acme, old)
    account_url = acme_client.net.account.uri
    new = jose.JWKRSA(key=rsa.generate_private_key(65537, 2048))
    url = f"{acme.live.url}/acme/key-change"
    inner = acme_jws.JWS.sign(
        json.dumps({"account": account_url, "oldKey": old.public_key().to_json()}).encode(),
        key=new, alg=jose.RS256, nonce=None, url=url,
    ).to_json()  # fmt: skip
    changed = post(acme, url, signed(inner, old, url, nonce_value=nonce(acme), kid=account_url))
    assert changed.status_code == 200, changed.text
    order_url = f"{acme.live.url}/acme/new-order"
    order = {"identifiers": [{"type": "dns", "value": "k.acme.test"}]}
    stale = post(acme, order_url, signed(order, old, order_url, nonce_value=nonce(acme), kid=account_url))
    assert stale.status_code == 400 and "signature" in stale.json()["detail"]
    fresh = post(
        acme, order_url, signed(order, new, order_url, nonce_value=nonce(acme), kid=account_url, alg=jose.RS256)
    )
    assert fresh.status_code == 201, fresh.text

    off = post(acme, account_url, signed({"status": "deactivated"}, new, account_url, nonce_value=nonce(acme),
                                         kid=account_url, alg=jose.RS256))  # fmt: skip
    assert off.status_code == 200 and off.json()["status"] == "deactivated"
    after = post(
        acme, order_url, signed(order, new, order_url, nonce_value=nonce(acme), kid=account_url, alg=jose.RS256)
    )
    problem(after, "unauthorized", 403)


def test_nonces_live_in_the_database_so_any_replica_takes_them_once(acme: AcmeServer, tmp_path: Path) -> None:
    """A second `pocketca serve` on the same database spends a nonce the first one issued, exactly once."""
    from tests.conftest import start_server

    other = start_server(acme.live.data_dir)  # same data dir and database, another process and port
    try:
        issued = nonce(acme)
        key = ec_key()
        url = f"{other.url}/acme/new-account"
        with other.client() as http:
            first = http.post(url, content=signed({}, key, url, nonce_value=issued),
                              headers={"Content-Type": "application/jose+json"})  # fmt: skip
        assert first.status_code == 201, first.text
        back = post(acme, f"{acme.live.url}/acme/new-account",
                    signed({}, key, f"{acme.live.url}/acme/new-account", nonce_value=issued))  # fmt: skip
        problem(back, "badNonce", 400)
    finally:
        other.stop()


def test_another_account_revokes_only_once_it_holds_authorizations_for_every_name(
    acme: AcmeServer, dns: ChallTestSrv
) -> None:
    orderer = new_client(acme)
    order = orderer.new_order(csr_for(["rv.acme.test"]))
    authorize_http01(orderer, order, dns)
    done = orderer.poll_and_finalize(order, deadline())
    certificate = x509.load_pem_x509_certificates(done.fullchain_pem.encode())[0]

    other = new_client(acme)
    with pytest.raises(messages.Error) as refused:
        other.revoke(certificate, 4)
    assert refused.value.typ == ACME_ERROR + "unauthorized" and "rv.acme.test" in (refused.value.detail or "")
    proof = other.new_order(csr_for(["rv.acme.test"]))  # the other account proves control of the name
    authorize_http01(other, proof, dns)
    other.poll_authorizations(proof, deadline())
    other.revoke(certificate, 4)
    with acme.live.client(headers={"Authorization": f"Bearer {acme.live.admin_token}"}) as http:
        record = http.get(f"/certs/{format_serial(certificate.serial_number)}").json()
    assert record["status"] == "revoked" and record["revocation_reason"] == "superseded"
