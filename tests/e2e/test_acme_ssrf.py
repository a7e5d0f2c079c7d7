"""The ACME validator as an attacker would use it, against a real `pocketca serve` with default settings (but for the
one loopback address the test's challenge server lives on): identifiers for the CA's own machine, a redirect into
it, a name that resolves to it. A listener on the challenge port at each of those addresses plays the internal
service: it must never be reached, and nothing it would answer may reach the client. Then: a fresh account cannot
revoke the service's own TLS certificate; http-01 to an IPv6 identifier sends its Host in brackets."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import josepy as jose
import pytest
from acme import jws as acme_jws
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from service.ca.identifiers import DEFAULT_ALLOW
from service.ca.inspect import format_serial
from tests.e2e.acme_env import CHALLENGE_IP, AcmeServer, ChallTestSrv, challtestsrv, start_acme_server
from tests.helpers import free_port

ACME_ERROR = "urn:ietf:params:acme:error:"
SECRET = "INTERNAL-ADMIN-SECRET"  # what the internal services answer: must never reach the client


# --- listeners on the challenge port ----------------------------------------------------------------------------


@dataclass
class Listener:
    """An HTTP server on one address of the challenge port: it records every request (path, Host) and answers from
    `routes` (a body, or a redirect), else 403 with SECRET, as an internal admin page would."""

    address: str
    port: int
    routes: dict[str, tuple[str, str]] = field(default_factory=dict)  # path -> ("body" | "redirect", value)
    hits: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)
    server: ThreadingHTTPServer | None = None

    def start(self) -> Listener:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                listener.hits.append((self.path, self.headers.get("Host", "")))
                kind, value = listener.routes.get(self.path, ("", ""))
                if kind == "redirect":
                    self.send_response(302)
                    self.send_header("Location", value)
                    body = b""
                elif kind == "body":
                    self.send_response(200)
                    body = value.encode()
                else:
                    self.send_response(403)
                    body = SECRET.encode()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
            daemon_threads = True

        self.server = Server((self.address, self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


INTERNAL = ["127.0.0.1", "127.0.0.2", "::1"]


@dataclass
class Lab:
    acme: AcmeServer
    dns: ChallTestSrv
    challenge: Listener  # the client's own challenge server, on CHALLENGE_IP
    internal: dict[str, Listener]  # the CA host's services, on the same port


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    port = free_port()
    listeners = [Listener(address, port).start() for address in [CHALLENGE_IP, *INTERNAL]]
    with challtestsrv(tmp_path_factory.mktemp("dns")) as dns:
        acme = start_acme_server(tmp_path_factory.mktemp("ssrf") / "data", dns, http_port=port)
        try:
            yield Lab(acme, dns, listeners[0], {lst.address: lst for lst in listeners[1:]})
        finally:
            for http in OPEN:
                http.close()
            acme.live.stop()
            for listener in listeners:
                listener.stop()


# --- a raw ACME client ------------------------------------------------------------------------------------------


OPEN: list[httpx.Client] = []  # closed before a server stops (it waits for keep-alive connections)


class Client:
    def __init__(self, acme: AcmeServer) -> None:
        self.acme = acme
        self.key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
        self.kid: str | None = None
        self.http = acme.live.client()
        OPEN.append(self.http)

    def url(self, path: str) -> str:
        return f"{self.acme.live.url}/acme/{path}"

    def post(self, url: str, payload: dict[str, Any] | None) -> httpx.Response:
        nonce = jose.decode_b64jose(self.http.head("/acme/new-nonce").headers["Replay-Nonce"])
        body = b"" if payload is None else json.dumps(payload).encode()
        signed = acme_jws.JWS.sign(body, key=self.key, alg=jose.ES256, nonce=nonce, url=url, kid=self.kid)
        return self.http.post(url, content=signed.json_dumps(), headers={"Content-Type": "application/jose+json"})

    def register(self) -> Client:
        created = self.post(self.url("new-account"), {"termsOfServiceAgreed": True})
        assert created.status_code == 201, created.text
        self.kid = created.headers["Location"]
        return self

    def order(self, *identifiers: tuple[str, str]) -> httpx.Response:
        payload = {"identifiers": [{"type": kind, "value": value} for kind, value in identifiers]}
        return self.post(self.url("new-order"), payload)

    def http01(self, authz_url: str) -> tuple[str, str]:
        """The http-01 challenge's URL and token."""
        challenges = self.post(authz_url, None).json()["challenges"]
        found = next(c for c in challenges if c["type"] == "http-01")
        return found["url"], found["token"]

    def key_authorization(self, token: str) -> str:
        return f"{token}.{jose.encode_b64jose(self.key.thumbprint())}"

    def validate(self, challenge_url: str) -> dict[str, Any]:
        """Answers the challenge and polls it until it settles."""
        assert self.post(challenge_url, {}).status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state: dict[str, Any] = self.post(challenge_url, None).json()
            if state["status"] not in ("pending", "processing"):
                return state
            time.sleep(0.2)
        raise AssertionError(f"the challenge never settled: {state}")


def path_of(token: str) -> str:
    return f"/.well-known/acme-challenge/{token}"


def leaks(detail: str) -> list[str]:
    """What an internal service answered, or what the validator's socket said, in a client's error."""
    return [s for s in (SECRET, "403", "Connection refused", "Errno", "[Err") if s in detail]


# --- the cases ----------------------------------------------------------------------------------------------------


ISSUE_IDENTIFIERS = [
    ("ip", "127.0.0.1"), ("ip", "::1"), ("ip", "0.0.0.0"), ("ip", "::ffff:127.0.0.1"), ("ip", "169.254.169.254"),
    ("ip", "fe80::1%eth0"), ("dns", "localhost"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "value"), ISSUE_IDENTIFIERS, ids=[v for _, v in ISSUE_IDENTIFIERS])
def test_new_order_refuses_identifiers_for_the_cas_own_machine(lab: Lab, kind: str, value: str) -> None:
    client = Client(lab.acme).register()
    refused = client.order((kind, value))
    assert refused.status_code == 400, refused.text
    assert refused.json()["type"] == ACME_ERROR + "rejectedIdentifier"
    assert refused.json()["subproblems"][0]["identifier"]["type"] == kind


def test_a_challenge_server_that_answers_is_validated(lab: Lab) -> None:
    """The control: the listeners work, and an allowed identifier is validated over them."""
    client = Client(lab.acme).register()
    made = client.order(("dns", "fine.ssrf.test"))
    assert made.status_code == 201, made.text
    url, token = client.http01(made.json()["authorizations"][0])
    lab.challenge.routes[path_of(token)] = ("body", client.key_authorization(token))
    assert client.validate(url)["status"] == "valid"
    assert (path_of(token), f"fine.ssrf.test:{lab.acme.http_port}") in lab.challenge.hits


@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.2:{port}/internal-admin", "http://127.0.0.1:{port}/internal-admin",
     "http://[::1]:{port}/internal-admin", "http://localhost:{port}/internal-admin",
     "http://[::ffff:127.0.0.2]:{port}/internal-admin", "http://loop.ssrf.test:{port}/internal-admin"],
    ids=["127.0.0.2", "127.0.0.1", "::1", "localhost", "mapped", "name-to-loopback"],
)  # fmt: skip
def test_a_redirect_into_the_cas_host_is_not_followed(lab: Lab, target: str) -> None:
    lab.dns.set_a("loop.ssrf.test", ["127.0.0.1"])
    client = Client(lab.acme).register()
    made = client.order(("dns", "redirect.ssrf.test"))
    url, token = client.http01(made.json()["authorizations"][0])
    redirect = target.format(port=lab.acme.http_port)
    lab.challenge.routes[path_of(token)] = ("redirect", redirect)
    before = {address: len(listener.hits) for address, listener in lab.internal.items()}
    state = client.validate(url)
    assert state["status"] == "invalid"
    assert {address: len(listener.hits) for address, listener in lab.internal.items()} == before  # never dialed
    error = state["error"]
    assert error["type"] == ACME_ERROR + "connection", error
    assert error["detail"].startswith("redirect.ssrf.test: http-01: redirect to "), error
    assert "refused" in error["detail"] and leaks(error["detail"]) == [], error
    order = client.post(made.headers["Location"], None).json()
    assert order["status"] == "invalid" and order["error"]["detail"] == error["detail"]


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2"])
def test_a_name_that_resolves_to_the_cas_host_is_not_dialed(lab: Lab, address: str) -> None:
    name = f"to-{address.replace('.', '-')}.ssrf.test"
    lab.dns.set_a(name, [address])
    client = Client(lab.acme).register()
    made = client.order(("dns", name))
    assert made.status_code == 201, made.text  # a name is not looked up at newOrder (its records may change)
    url, _ = client.http01(made.json()["authorizations"][0])
    before = len(lab.internal[address].hits)
    state = client.validate(url)
    assert state["status"] == "invalid" and len(lab.internal[address].hits) == before
    error = state["error"]
    assert error["type"] == ACME_ERROR + "rejectedIdentifier", error
    assert error["detail"].startswith(f"{name}: http-01: {name} resolves only to refused addresses"), error
    assert leaks(error["detail"]) == [], error


def test_a_challenge_that_fails_on_an_allowed_host_says_how_not_what_it_answered(lab: Lab) -> None:
    """The allowed host answers 403 with a secret: the client learns the URL and that it was not 200 with the key
    authorization; the operator's audit has the status."""
    client = Client(lab.acme).register()
    made = client.order(("dns", "denied.ssrf.test"))
    url, token = client.http01(made.json()["authorizations"][0])
    lab.challenge.routes.pop(path_of(token), None)  # the listener's 403 with SECRET
    error = client.validate(url)["error"]
    assert error["type"] == ACME_ERROR + "unauthorized"
    port = lab.acme.http_port
    assert error["detail"] == (
        f"denied.ssrf.test: http-01: http://denied.ssrf.test:{port}{path_of(token)} did not answer 200 with the "
        "key authorization"
    )
    with lab.acme.live.client(headers={"Authorization": f"Bearer {lab.acme.live.admin_token}"}) as admin:
        events = admin.get("/audit", params={"limit": 50}).json()["items"]
    seen = [e["detail"] for e in events if e["action"] == "acme.challenge" and "denied.ssrf.test" in e["detail"]]
    assert seen and f"({CHALLENGE_IP}): 403" in seen[0]


def test_a_fresh_account_cannot_revoke_the_services_own_certificate(lab: Lab) -> None:
    context = ssl.create_default_context(cafile=str(lab.acme.live.ca_file))
    with (
        socket.create_connection(("127.0.0.1", lab.acme.live.port)) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    own = x509.load_der_x509_certificate(der)
    client = Client(lab.acme).register()
    refused = client.order(("dns", "localhost"), ("ip", "127.0.0.1"), ("ip", "::1"))
    assert refused.status_code == 400 and refused.json()["type"] == ACME_ERROR + "compound"
    revoke = client.post(
        client.url("revoke-cert"), {"certificate": jose.encode_b64jose(der), "reason": 1}
    )  # keyCompromise, as in the issue
    assert revoke.status_code == 403 and revoke.json()["type"] == ACME_ERROR + "unauthorized", revoke.text
    serial = format_serial(own.serial_number)
    with lab.acme.live.client(headers={"Authorization": f"Bearer {lab.acme.live.admin_token}"}) as admin:
        assert admin.get(f"/certs/{serial}").json()["status"] == "valid"


def test_http01_to_an_ipv6_identifier_sends_the_host_in_brackets(tmp_path: Path) -> None:
    """A server that allows ::1 (and does not name it among its own): the validator's request says
    `Host: [::1]:port`, as RFC 7230 5.4 and RFC 3986 3.2.2 write an IPv6 host."""
    port = free_port()
    listener = Listener("::1", port).start()
    with challtestsrv(tmp_path) as dns:
        acme = start_acme_server(
            tmp_path / "data",
            dns,
            http_port=port,
            extra_env={
                "POCKETCA_SERVER_NAMES": "localhost,127.0.0.1",
                "POCKETCA_ACME_ALLOW": ",".join([*DEFAULT_ALLOW, "::1/128"]),
            },
        )
        try:
            client = Client(acme).register()
            made = client.order(("ip", "::1"))
            assert made.status_code == 201, made.text
            url, token = client.http01(made.json()["authorizations"][0])
            listener.routes[path_of(token)] = ("body", client.key_authorization(token))
            assert client.validate(url)["status"] == "valid"
            assert listener.hits == [(path_of(token), f"[::1]:{port}")]
        finally:
            for http in OPEN:
                http.close()
            acme.live.stop()
            listener.stop()


def _served_certificate(port: int, ca_file: Path) -> x509.Certificate:
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_a_revoked_service_certificate_is_replaced_within_seconds(tmp_path: Path) -> None:
    """However it came to be revoked, the service does not go on showing clients a certificate its own OCSP
    responder calls revoked: every worker's keeper sees it, one re-issues, all serve the new one."""
    from tests.conftest import start_server

    server = start_server(tmp_path / "data", workers=2)
    try:
        own = _served_certificate(server.port, server.ca_file)
        serial = format_serial(own.serial_number)
        with server.client(headers={"Authorization": f"Bearer {server.admin_token}"}) as admin:
            assert admin.post(f"/certs/{serial}/revoke", json={"reason": "keyCompromise"}).status_code == 200
        deadline = time.monotonic() + 20
        served = own
        while time.monotonic() < deadline:
            served = [_served_certificate(server.port, server.ca_file) for _ in range(4)][-1]  # both workers
            if served.serial_number != own.serial_number:
                break
            time.sleep(0.3)
        assert served.serial_number != own.serial_number, "still serving the revoked certificate"
        with server.client(headers={"Authorization": f"Bearer {server.admin_token}"}) as admin:
            assert admin.get(f"/certs/{format_serial(served.serial_number)}").json()["status"] == "valid"
        time.sleep(2.5)  # a keeper's look later, no worker serves the revoked one
        assert all(
            _served_certificate(server.port, server.ca_file).serial_number != own.serial_number for _ in range(6)
        )
        assert "server certificate re-issued" in server.log()
    finally:
        server.stop()
