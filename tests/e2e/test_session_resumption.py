"""TLS session resumption across workers: every worker seals session tickets with the same keys (it serves a forked
copy of one SSL context: service.serving.contexts), so a client resumes wherever its next connection lands, and the
app still checks revocation on each request."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.client import build_client_context
from service.datadir.prepare import Prepared
from service.serving.contexts import build_server_context
from tests.conftest import LiveServer, start_server
from tests.e2e.test_revocation_live import _issue, _revoke


def _serve_in_a_fork(context: ssl.SSLContext) -> tuple[int, Iterator[None]]:
    """A TLS server on a free port answering one byte per connection, in a forked process (as a worker is) serving
    its copy of `context`, until the generator is closed."""
    listener = socket.create_server(("127.0.0.1", 0))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            while True:
                raw, _ = listener.accept()
                try:
                    with context.wrap_socket(raw, server_side=True) as conn:
                        conn.recv(1)
                        conn.sendall(b"!")
                except (ssl.SSLError, OSError):
                    pass
        finally:
            os._exit(0)
    port = listener.getsockname()[1]
    listener.close()

    def stopper() -> Iterator[None]:
        yield
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    return port, stopper()


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
    """Two "workers": forked copies of one context share its ticket keys; two contexts built apart do not."""
    paths = prepared.paths
    first = build_server_context(paths)
    second = first if shared else build_server_context(paths)
    port_a, stop_a = _serve_in_a_fork(first)
    port_b, stop_b = _serve_in_a_fork(second)
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
