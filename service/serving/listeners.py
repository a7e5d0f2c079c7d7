"""The listening sockets: the HTTPS one and the plain-HTTP publication one, bound once by `serve` before the data
dir is touched (a port in use stops `serve` with one line, before anything is made) and handed to every worker."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from service.errors import ConfigurationError


@dataclass(frozen=True)
class Listeners:
    tls: socket.socket
    plain: socket.socket | None  # the publication listener; None when POCKETCA_HTTP_PORT is 0

    def close(self) -> None:
        for sock in (self.tls, self.plain):
            if sock is not None:
                sock.close()


def bind(host: str, port: int, http_port: int) -> Listeners:
    """Both listeners, or neither (a ConfigurationError naming the setting)."""
    tls = bind_listener(host, port, "POCKETCA_PORT/--port")
    if not http_port:
        return Listeners(tls, None)
    try:
        plain = bind_listener(host, http_port, "POCKETCA_HTTP_PORT/--http-port")
    except ConfigurationError:
        tls.close()
        raise
    return Listeners(tls, plain)


def bind_listener(host: str, port: int, setting: str) -> socket.socket:
    """A socket bound to host:port (listened on when a server starts on it), inherited by forked workers."""
    where = f"{host}:{port} (POCKETCA_HOST/--host, {setting})"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = "; stop what uses it or choose another port" if exc.errno == errno.EADDRINUSE else ""
        raise ConfigurationError(f"cannot listen on {where}: {exc.strerror}{hint}") from None
    sock.set_inheritable(True)
    return sock


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
