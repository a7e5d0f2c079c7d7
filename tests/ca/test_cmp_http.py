"""openssl cmp over HTTP against the cmp modules, for what it checks only live: with -rspin (test_cmp_response)
openssl does not compare the answer's transactionID and recipNonce with its request's; over HTTP it does.

The server here is the least a front door does (one secret, no database): read, verify the MAC, read the
request, issue from the throwaway CA, answer signed by the RA; keep the pending confirmation; check the certConf.
Its `tamper` hook breaks one header field of the ip, as the negative control.
"""

from __future__ import annotations

import dataclasses
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from service.ca.cmp_confirm import PendingConfirmation, check_confirmation
from service.ca.cmp_failures import CmpError
from service.ca.cmp_header import CmpHeader
from service.ca.cmp_message import CmpMessage, load_pki_message
from service.ca.cmp_request import read_certification_request
from service.ca.cmp_response import SignedBy, build_response, certification_response, confirmation, refusal_body
from service.ca.cmp_verify import verify_mac_protection
from tests.ca.cmp_helpers import cmp_ca, openssl, ra, write_pem
from tests.helpers import now, p256

SECRET = b"s3cret-for-http"


class Server:
    def __init__(self, tamper: Callable[[CmpHeader], CmpHeader] = lambda header: header) -> None:
        self.tamper = tamper
        self.pending: dict[bytes, PendingConfirmation] = {}
        key, certificate = ra()
        self.protection = SignedBy(key, certificate)

    def answer(self, der: bytes) -> bytes:
        message: CmpMessage | None = None
        try:
            message = load_pki_message(der)
            verify_mac_protection(message, SECRET)
            if message.body_type == "certConf":
                check_confirmation(message, self.pending.pop(message.header.transaction_id))
                return build_response(message.header, confirmation(), self.protection, now=now()).der
            asked = read_certification_request(message)
            _, certificate = cmp_ca().issue("dev1.test", public_key=asked.request.public_key)
            body = certification_response(message, asked.cert_req_id, certificate)
            implicit = message.header.implicit_confirm
            answer = build_response(
                self.tamper(message.header), body, self.protection, now=now(), implicit_confirm=implicit
            )
            self.pending[message.header.transaction_id] = PendingConfirmation(
                message.header.transaction_id,
                answer.sender_nonce,
                asked.cert_req_id,
                certificate.public_bytes(Encoding.DER),
            )
            return answer.der
        except CmpError as error:
            return build_response(error.header, refusal_body(error), self.protection, now=now()).der


@pytest.fixture
def serve() -> Iterator[Callable[[Server], int]]:
    servers: list[ThreadingHTTPServer] = []

    def start(cmp: Server) -> int:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = cmp.answer(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Type", "application/pkixcmp")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return int(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def enrol(tmp_path: Path, port: int, *extra: str) -> str:
    result = subprocess.run(
        [openssl(), "cmp", "-cmd", "ir", "-server", f"127.0.0.1:{port}/.well-known/cmp", "-ref", "r",
         "-secret", f"pass:{SECRET.decode()}", "-subject", "/CN=dev1.test",
         "-newkey", str(write_pem(tmp_path, "k.pem", p256())), "-certout", str(tmp_path / "cert.pem"),
         "-trusted", str(write_pem(tmp_path, "root.pem", cmp_ca().certificate)), "-msg_timeout", "20", *extra],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return result.stdout + result.stderr


def test_openssl_enrols_and_confirms_over_http(tmp_path: Path, serve: Callable[[Server], int]) -> None:
    output = enrol(tmp_path, serve(Server()))
    assert "sending CERTCONF" in output and "received PKICONF" in output, output
    assert "received 1 enrolled certificate(s)" in output


def test_openssl_enrols_with_implicit_confirmation_over_http(tmp_path: Path, serve: Callable[[Server], int]) -> None:
    output = enrol(tmp_path, serve(Server()), "-implicit_confirm")
    assert "received 1 enrolled certificate(s)" in output, output
    assert "CERTCONF" not in output


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [("sender_nonce", b"x" * 16, "recipnonce unmatched"), ("transaction_id", b"y" * 16, "transactionid unmatched")],
    ids=["recipNonce", "transactionID"],
)
def test_openssl_refuses_an_ip_that_does_not_answer_its_request(
    tmp_path: Path, serve: Callable[[Server], int], field: str, value: bytes, complaint: str
) -> None:
    """The negative control: the same server, one header field of the ip not the request's."""
    output = enrol(tmp_path, serve(Server(lambda header: dataclasses.replace(header, **{field: value}))))
    assert f"CMP error: {complaint}" in output, output
    assert "received 1 enrolled certificate(s)" not in output
