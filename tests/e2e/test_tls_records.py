"""A response leaves the live server in one TLS record (its head and body written together), whole, in order.

The client drives TLS itself (ssl.MemoryBIO) over a plain socket, so it sees the records as they arrive."""

from __future__ import annotations

import socket
import ssl

import pytest

from tests.conftest import LiveServer

APPLICATION_DATA = 23


class RawTLS:
    def __init__(self, server: LiveServer, version: ssl.TLSVersion) -> None:
        context = ssl.create_default_context(cafile=str(server.ca_file))
        context.minimum_version = context.maximum_version = version
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        self.raw = b""  # received bytes whose records are not yet counted
        self.records: list[int] = []  # the content type of each record received
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._receive()
        self._flush()

    def close(self) -> None:
        self.sock.close()

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _receive(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the server")
        self.raw += data
        while len(self.raw) >= 5:
            length = int.from_bytes(self.raw[3:5], "big")
            if len(self.raw) < 5 + length:
                break
            self.records.append(self.raw[0])
            self.raw = self.raw[5 + length :]
        self.incoming.write(data)

    def request(self, head: str) -> tuple[bytes, int]:
        """Sends one request; returns its whole response and how many application-data records carried it."""
        self.tls.write(head.encode())
        self._flush()
        before = len(self.records)
        response = b""
        while not _complete(response):
            try:
                data = self.tls.read(65536)
            except ssl.SSLWantReadError:
                self._receive()
                continue
            if not data:  # the server's close_notify
                raise ConnectionError("closed by the server")
            response += data
        carried = self.records[before:].count(APPLICATION_DATA)
        return response, carried


def _complete(response: bytes) -> bool:
    head, separator, body = response.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"])
def test_a_response_is_one_record(
    live_server: LiveServer, version: ssl.TLSVersion, request: pytest.FixtureRequest
) -> None:
    client = RawTLS(live_server, version)
    request.addfinalizer(client.close)
    client.request("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")  # TLS 1.3 session tickets arrive by now
    for path in ("/healthz", "/ca", "/nothing-here"):
        response, records = client.request(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert response.startswith((b"HTTP/1.1 200", b"HTTP/1.1 404")), response[:100]
        assert records == 1, f"{path}: {records} records"


def test_a_closing_response_arrives_whole(live_server: LiveServer, request: pytest.FixtureRequest) -> None:
    """`Connection: close`: the server closes after the response, which is flushed first."""
    client = RawTLS(live_server, ssl.TLSVersion.TLSv1_3)
    request.addfinalizer(client.close)
    response, _ = client.request("GET /ca HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200") and b"-----END CERTIFICATE-----" in response
    with pytest.raises((ConnectionError, ssl.SSLZeroReturnError, ssl.SSLEOFError)):
        for _ in range(10):
            client.request("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
