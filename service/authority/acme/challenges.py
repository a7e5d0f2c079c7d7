"""Challenge validators: http-01 and dns-01 (RFC 8555 §8.3–8.4) and tls-alpn-01 (RFC 8737), for DNS and IP
identifiers (RFC 8738). Each runs off the request path, with timeouts, a cap on what it reads and redirects
followed only a few times and only to the configured ports. A validator returns what it saw, or raises
ChallengeFailed with the ACME error type and a sentence for the client."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import dns.exception
import dns.resolver
import dns.reversename
import httpx
from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from service.authority.acme.jws import b64encode
from service.ca.identifiers import IdentifierPolicy

TIMEOUT = 10.0
MAX_BODY = 8 * 1024
MAX_REDIRECTS = 3
ACME_IDENTIFIER_OID = ObjectIdentifier("1.3.6.1.5.5.7.1.31")  # RFC 8737 §3
ALPN = "acme-tls/1"
UA = "pocketca-acme"


class ChallengeFailed(Exception):
    """A validation that failed: `kind` is the ACME error type, `detail` the sentence for the client (the
    identifier and the kind of failure, never what a server the validator reached answered: that could be an
    internal service), `record` what the validator saw, for the operator's audit."""

    def __init__(self, kind: str, detail: str, record: str | None = None) -> None:
        super().__init__(detail)
        self.kind = kind  # connection, unauthorized, dns, incorrectResponse, tls, rejectedIdentifier
        self.detail = detail
        self.record = record or detail


@dataclass(frozen=True)
class ValidationConfig:
    http_port: int = 80
    tls_port: int = 443
    resolver: tuple[str, int] | None = None  # host, port; None: the system's
    policy: IdentifierPolicy = field(default_factory=IdentifierPolicy)  # what may be dialed


def parse_resolver(text: str | None) -> tuple[str, int] | None:
    """`host:port` (or `[v6]:port`, or a bare host for port 53)."""
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port or (host.count(":") and not host.startswith("[")):
        host, port = text, "53"
    host = host.strip("[]")
    ipaddress.ip_address(host)  # a resolver is an address: a name would need a resolver itself
    return host, int(port)


def key_authorization(token: str, account_thumbprint: str) -> str:
    return f"{token}.{account_thumbprint}"


def dns_txt_value(key_auth: str) -> str:
    return b64encode(hashlib.sha256(key_auth.encode()).digest())


class Validator:
    def __init__(self, config: ValidationConfig) -> None:
        self.config = config

    def _resolver(self) -> dns.resolver.Resolver:
        resolver = dns.resolver.Resolver(configure=self.config.resolver is None)
        if self.config.resolver is not None:
            resolver.nameservers = [self.config.resolver[0]]
            resolver.port = self.config.resolver[1]
        resolver.lifetime = TIMEOUT
        resolver.timeout = TIMEOUT / 2
        return resolver

    def addresses(self, kind: str, value: str) -> list[str]:
        """Where an identifier lives: an IP is itself; a name's A and AAAA records from the resolver."""
        if kind == "ip":
            return [value]
        if self.config.resolver is None:
            try:
                infos = socket.getaddrinfo(value, None, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise ChallengeFailed("dns", f"cannot resolve {value}", f"cannot resolve {value}: {exc}") from None
            return list(dict.fromkeys(str(info[4][0]) for info in infos))
        found: list[str] = []
        resolver = self._resolver()
        for rdtype in ("A", "AAAA"):
            try:
                found.extend(r.to_text() for r in resolver.resolve(value, rdtype))
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
                continue
            except dns.exception.DNSException as exc:
                raise ChallengeFailed("dns", f"looking up {value} {rdtype} failed: {exc}") from None
        if not found:
            raise ChallengeFailed("dns", f"{value} has no A or AAAA record")
        return found

    def reachable(self, kind: str, value: str) -> str:
        """The address to dial for a host: the first of its addresses the identifier policy lets through. A name
        the policy refuses is not even looked up; an address it refuses is never dialed."""
        policy = self.config.policy
        if kind == "dns" and (refusal := policy.refusal_for_name(value.lower().rstrip("."))):
            raise ChallengeFailed("rejectedIdentifier", refusal)
        refusals = []
        for address in self.addresses(kind, value):
            refusal = policy.refusal_for_address(ipaddress.ip_address(address))
            if refusal is None:
                return address
            refusals.append(refusal)
        if kind == "ip":
            raise ChallengeFailed("rejectedIdentifier", refusals[0])
        raise ChallengeFailed("rejectedIdentifier", f"{value} resolves only to refused addresses: {refusals[0]}")

    # --- http-01 -----------------------------------------------------------------------------------------

    def http_01(self, kind: str, value: str, token: str, key_auth: str) -> str:
        """GET the challenge URL; redirects are followed (a few, to the configured ports), each target checked
        against the identifier policy before it is dialed. What the client reads names the URL and the kind of
        failure; the status and the error the validator met go to the operator's record only."""
        url = f"http://{_host_for_url(kind, value)}:{self.config.http_port}/.well-known/acme-challenge/{token}"
        deadline = time.monotonic() + TIMEOUT
        for hop in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
            allowed = {"http": self.config.http_port, "https": self.config.tls_port}
            if parts.scheme not in allowed or port != allowed[parts.scheme]:
                raise ChallengeFailed(
                    "connection",
                    f"redirect to {url} refused: only http on port {self.config.http_port} "
                    f"or https on port {self.config.tls_port}",
                )
            try:
                address = self.reachable("ip" if _is_ip(host) else "dns", host)
            except ChallengeFailed as exc:
                if hop == 0:
                    raise
                raise ChallengeFailed("connection", f"redirect to {url} refused: {exc.detail}") from None
            status, location, body = _fetch(parts.scheme, address, port, host, parts.path or "/", deadline)
            seen = f"GET {url} ({address}): {status}"
            if status in (301, 302, 303, 307, 308) and location:
                url = str(httpx.URL(url).join(location))
                continue
            if status != 200:
                raise ChallengeFailed("unauthorized", f"{url} did not answer 200 with the key authorization", seen)
            if body.decode(errors="replace").strip() != key_auth:
                raise ChallengeFailed("incorrectResponse", f"{url} did not return the key authorization", seen)
            return seen
        raise ChallengeFailed("connection", f"more than {MAX_REDIRECTS} redirects from the challenge URL")

    # --- dns-01 ------------------------------------------------------------------------------------------

    def dns_01(self, value: str, key_auth: str) -> str:
        name = "_acme-challenge." + value.removeprefix("*.")
        expected = dns_txt_value(key_auth)
        try:
            answer = self._resolver().resolve(name, "TXT")
        except dns.resolver.NXDOMAIN:
            raise ChallengeFailed("dns", f"no TXT record at {name} (NXDOMAIN)") from None
        except dns.resolver.NoAnswer:
            raise ChallengeFailed("dns", f"no TXT record at {name}") from None
        except dns.exception.DNSException as exc:
            failed = f"looking up {name} TXT failed"
            raise ChallengeFailed("dns", failed, f"{failed}: {exc}") from None
        texts = [b"".join(r.strings).decode(errors="replace") for r in answer]
        if expected not in texts:
            raise ChallengeFailed("incorrectResponse", f"the TXT records at {name} do not hold the expected value")
        return f"TXT {name}: found"

    # --- tls-alpn-01 -------------------------------------------------------------------------------------

    def tls_alpn_01(self, kind: str, value: str, key_auth: str) -> str:
        server_name = dns.reversename.from_address(value).to_text(omit_final_dot=True) if kind == "ip" else value
        address = self.reachable(kind, value)
        target = f"[{address}]:{self.config.tls_port}" if ":" in address else f"{address}:{self.config.tls_port}"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the certificate is self-signed by design; we check its content
        context.set_alpn_protocols([ALPN])
        try:
            with (
                socket.create_connection((address, self.config.tls_port), timeout=TIMEOUT) as raw,
                context.wrap_socket(raw, server_hostname=server_name) as tls,
            ):
                if tls.selected_alpn_protocol() != ALPN:
                    raise ChallengeFailed("tls", f"{target} did not negotiate {ALPN}")
                der = tls.getpeercert(binary_form=True)
        except (OSError, ssl.SSLError) as exc:
            failed = f"no TLS connection with {ALPN} to {target} (refused, reset, failed or too slow)"
            raise ChallengeFailed("connection", failed, f"TLS to {target} failed: {exc}") from None
        if not der:
            raise ChallengeFailed("tls", "no certificate in the handshake")
        _check_alpn_certificate(x509.load_der_x509_certificate(der), kind, value, key_auth)
        return f"TLS {target} SNI {server_name}: acmeIdentifier matches"


def _check_alpn_certificate(certificate: x509.Certificate, kind: str, value: str, key_auth: str) -> None:
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise ChallengeFailed("tls", "the tls-alpn-01 certificate has no subjectAltName") from None
    names = [str(n.value) for n in sans]
    if names != [value]:
        wrong = f"the tls-alpn-01 certificate must name exactly {value}"
        raise ChallengeFailed("tls", wrong, f"{wrong}, not {names}")
    try:
        extension = certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    except x509.ExtensionNotFound:
        raise ChallengeFailed("tls", "the tls-alpn-01 certificate has no acmeIdentifier extension") from None
    digest = hashlib.sha256(key_auth.encode()).digest()
    if not extension.critical:
        raise ChallengeFailed("tls", "the acmeIdentifier extension must be critical")
    found = extension.value
    if not isinstance(found, x509.UnrecognizedExtension) or found.value != b"\x04\x20" + digest:  # an OCTET STRING
        raise ChallengeFailed("incorrectResponse", "the acmeIdentifier does not hold the key authorization's digest")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host_for_url(kind: str, value: str) -> str:
    return f"[{value}]" if kind == "ip" and ":" in value else value


def _fetch(scheme: str, address: str, port: int, host: str, path: str, deadline: float) -> tuple[int, str, bytes]:
    """One GET to `address` with `Host: host` (an IPv6 literal in brackets), reading at most MAX_BODY bytes before
    the deadline."""
    target = f"[{address}]" if ":" in address else address
    name = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{name}:{port}{path}"
    remaining = max(0.5, deadline - time.monotonic())
    headers = {"Host": name if port == {"http": 80, "https": 443}[scheme] else f"{name}:{port}", "User-Agent": UA}
    try:
        with (
            httpx.Client(verify=False, timeout=remaining, follow_redirects=False) as client,  # noqa: S501
            client.stream("GET", f"{scheme}://{target}:{port}{path}", headers=headers) as response,
        ):
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BODY:
                    raise ChallengeFailed("unauthorized", f"{url} answered with more than {MAX_BODY} bytes")
                if time.monotonic() > deadline:
                    raise ChallengeFailed("connection", f"{url} took too long to answer")
            return response.status_code, response.headers.get("location", ""), body
    except httpx.HTTPError as exc:
        failed = f"fetching {url} failed (no connection, or no complete HTTP answer in time)"
        raise ChallengeFailed("connection", failed, f"fetching {url} from {target} failed: {exc!r}") from None
