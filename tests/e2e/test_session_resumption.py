"""TLS session resumption across workers: every worker seals session tickets with the same keys (tls.py), so a
client resumes wherever its next connection lands, and the app still checks revocation on each request."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service import tls
from service.datadir.prepare import Prepared
from service.tls import build_client_context, build_server_context, share_session_tickets
from tests.conftest import LiveServer, start_server
from tests.e2e.test_revocation_live import _issue, _revoke


def _serve_once_each(context: ssl.SSLContext) -> tuple[int, Iterator[None]]:
    """A TLS server on a free port answering one byte per connection, until the generator is closed."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(raw, server_side=True) as conn:
                    conn.recv(1)
                    conn.sendall(b"!")
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def stopper() -> Iterator[None]:
        yield
        stop.set()
        thread.join(timeout=5)
        listener.close()

    return listener.getsockname()[1], stopper()


def _exchange(port: int, client: ssl.SSLContext, session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = client.wrap_socket(raw, server_hostname="localhost", session=session)
    conn.sendall(b"?")
    assert conn.recv(1) == b"!"  # the TLS 1.3 ticket arrives with the first data
    return conn


@pytest.mark.parametrize("shared", [True, False])
def test_a_session_from_one_context_resumes_on_another_only_with_shared_keys(
    prepared: Prepared, shared: bool
) -> None:
    paths = prepared.paths
    first, second = build_server_context(paths), build_server_context(paths)
    keys = os.urandom(tls.TICKET_KEYS_BYTES)
    if shared:
        assert share_session_tickets(first, keys) and share_session_tickets(second, keys)
    port_a, stop_a = _serve_once_each(first)
    port_b, stop_b = _serve_once_each(second)
    next(stop_a), next(stop_b)
    client = build_client_context(paths.ca_cert)
    try:
        with _exchange(port_a, client) as conn:
            session = conn.session
            assert not conn.session_reused
        with _exchange(port_b, client, session) as conn:  # another "worker"
            assert conn.session_reused is shared
    finally:
        for stop in (stop_a, stop_b):
            next(stop, None)


def test_ticket_keys_must_be_the_openssl_block(prepared: Prepared) -> None:
    with pytest.raises(ValueError, match="80 bytes"):
        share_session_tickets(build_server_context(prepared.paths), b"short")


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(tmp_path / "data", workers=2)
    yield server
    server.stop()


def _whoami(port: int, client: ssl.SSLContext, session: ssl.SSLSession | None) -> tuple[int, bool, ssl.SSLSession]:
    """One connection, one GET /whoami, read to the end (the ticket comes with the response)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with client.wrap_socket(raw, server_hostname="localhost", session=session) as conn:
        conn.sendall(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        response = b""
        while chunk := conn.recv(65536):
            response += chunk
        status = int(response.split(b" ", 2)[1])
        assert conn.session is not None
        return status, conn.session_reused, conn.session


def test_two_workers_resume_each_others_sessions_and_still_refuse_a_revoked_client(
    two_workers: LiveServer, tmp_path: Path
) -> None:
    """Resumption skips the client certificate's verification in the handshake: /whoami must still refuse a
    certificate revoked after the session began."""
    server = two_workers
    cert, serial = _issue(server, tmp_path, "resumer")
    client = build_client_context(server.ca_file, cert, tmp_path / "resumer.key")
    status, reused, session = _whoami(server.port, client, None)
    assert status == 200 and not reused
    resumed = 0
    for _ in range(16):  # the kernel spreads these over both workers
        status, reused, session = _whoami(server.port, client, session)
        assert status == 200
        resumed += reused
    assert resumed == 16  # each one resumed, whichever worker accepted it
    workers = {line for line in server.log().splitlines() if "Started server process" in line}
    assert len(workers) == 2
    _revoke(server, serial, "keyCompromise")
    time.sleep(0.1)
    status, reused, _ = _whoami(server.port, client, session)
    assert reused and status == 403  # resumed, and refused all the same
