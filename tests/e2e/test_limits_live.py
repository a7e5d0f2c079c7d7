"""Timeouts at the socket: a client that connects and sends nothing, or trickles its request head, is cut off."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveServer, start_server


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("strict") / "data",
        extra_env={"POCKETCA_HEADER_TIMEOUT": "1", "POCKETCA_KEEPALIVE_TIMEOUT": "1"},
    )
    yield server
    server.stop()


def _connect(server: LiveServer) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(server.ca_file))
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


def _closed_within(sock: ssl.SSLSocket, seconds: float) -> float:
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return float("inf")
    except (ConnectionError, ssl.SSLError):
        pass
    return time.monotonic() - started


def test_silent_connection_is_closed(strict: LiveServer) -> None:
    with _connect(strict) as sock:
        assert _closed_within(sock, 5) < 3


def test_trickled_head_is_closed(strict: LiveServer) -> None:
    with _connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        for _ in range(3):  # a byte now and then never completes the head
            time.sleep(0.4)
            try:
                sock.sendall(b"X")
            except (ConnectionError, ssl.SSLError):
                break
        assert _closed_within(sock, 5) < 3


def test_prompt_client_is_served_and_idle_keepalive_closes(strict: LiveServer, tmp_path: Path) -> None:
    with _connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert _closed_within(sock, 5) < 3  # keep-alive timeout of 1 s
