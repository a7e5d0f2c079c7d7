"""TLS terminated at a trusted proxy: the client certificate it forwards in a header, and the client's address.

Only requests whose TCP peer is in POCKETCA_TRUSTED_PROXIES may speak for a client; from anyone else the header
is ignored and logged. A forwarded certificate is never trusted for being forwarded: the authority still requires
it to be, byte for byte, a certificate this CA issued, unexpired, unrevoked and for client authentication.
"""

from __future__ import annotations

import ipaddress
import logging
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.requests import Request

log = logging.getLogger("pocketca.proxy")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ProxyConfig:
    trusted: tuple[Network, ...] = ()
    certificate_header: str = "x-ssl-client-cert"

    @classmethod
    def parse(cls, networks: Iterable[str], header: str) -> ProxyConfig:
        return cls(
            tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks if n.strip()), header.strip().lower()
        )

    def is_trusted(self, address: str | None) -> bool:
        if not self.trusted or address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)


def forwarded_certificate(config: ProxyConfig, peer_address: str | None, value: str | None) -> bytes | None:
    """The DER of a forwarded client certificate (nginx `$ssl_client_escaped_cert`: URL-encoded PEM), if the peer
    may forward one; None otherwise."""
    if value is None or value.strip() in ("", "(null)"):
        return None
    if not config.is_trusted(peer_address):
        log.warning("ignored %s header from untrusted address %s", config.certificate_header, peer_address)
        return None
    try:
        pem = urllib.parse.unquote(value).encode()
        return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    except ValueError:
        log.warning("unreadable %s header from proxy %s", config.certificate_header, peer_address)
        return b""  # present but unreadable: the authority refuses it (401), rather than falling back to nothing


NO_PROXY = ProxyConfig()


def peer_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def client_address(request: Request) -> str | None:
    """The client's address, for the audit: X-Forwarded-For's last hop when a trusted proxy sent it."""
    peer = peer_address(request)
    proxy: ProxyConfig = getattr(request.app.state, "proxy", NO_PROXY)
    if not proxy.trusted:  # the usual case: no header to look at
        return peer
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and proxy.is_trusted(peer):
        return forwarded.split(",")[-1].strip()[:64] or peer
    return peer
