"""A test-only stand-in for the enrolment page and `POST /enroll/{secret}/csr` (the real routes come with the
third-wave house): a stdlib HTTPS server that serves service/enroll/static/ under the page's strict CSP and signs
the browser's CSR with a throwaway CA built by our own `service.ca`, taking the names from the "invitation", never
from the CSR. Every request is recorded, so a test can show what left the browser."""

from __future__ import annotations

import datetime as dt
import html
import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from service.ca.csr import load_csr, read_request
from service.ca.issue import build_ca_certificate, build_leaf_builder, random_serial_number
from service.ca.names import build_subject, format_general_name, parse_general_name
from service.ca.policy import LeafSpec
from service.ca.profiles import BUILTIN_PROFILES
from service.errors import InvalidCSRError
from tests.helpers import now, p256, write_pair

# What the real page must send: scripts, styles, fetches only from its own origin; no inline script at all.
CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'"
)
STATIC = resources.files("service.enroll").joinpath("static")
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Get your certificate</title>
<script type="module" src="/enroll/static/enroll.js"></script></head>
<body><h1>Get your certificate, {cn}</h1>
<form method="post" hidden data-enroll-csr-url="{csr_url}" data-enroll-cn="{cn}" data-enroll-filename="{filename}">
  <label>Key <select name="key_type"><option value="p256">P-256</option><option value="rsa2048">RSA 2048</option>
  </select></label>
  <label>Password <input type="password" name="password" autocomplete="new-password"></label>
  <label>Again <input type="password" name="password_again" autocomplete="new-password"></label>
  <button type="submit">Make my certificate</button>
  <p role="status" data-enroll-status></p>
  <a hidden data-enroll-save>Save the file again</a>
</form>
<noscript><p>The page needs JavaScript for a key made here.</p></noscript>
</body></html>
"""


@dataclass
class Invitation:
    secret: str
    cn: str
    sans: tuple[str, ...]
    spent: bool = False


@dataclass
class Seen:
    method: str
    path: str
    content_type: str
    body: bytes


@dataclass
class EnrollSite:
    """The throwaway CA, the site's own TLS certificate, the invitations and what the browser sent."""

    directory: Path
    invitations: dict[str, Invitation] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    issued: list[x509.Certificate] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ca_key = p256()
        self.ca = build_ca_certificate(self.ca_key, "pocketca root CA", now=now(), lifetime=dt.timedelta(days=2))
        self.ca_file = self.directory / "ca.pem"
        self.ca_file.write_bytes(self.ca.public_bytes(Encoding.PEM))
        key = p256()
        server = self._sign(key.public_key(), "localhost", ("localhost", "127.0.0.1"), "server")
        self.cert_file, self.key_file = write_pair(self.directory, "site", key, server)
        self.lock = threading.Lock()

    def invite(self, secret: str, cn: str, *sans: str) -> str:
        self.invitations[secret] = Invitation(secret, cn, sans)
        return f"/enroll/{secret}"

    def _sign(self, public_key: Any, cn: str, sans: tuple[str, ...], profile: str) -> x509.Certificate:
        names = tuple(parse_general_name(name) for name in sans)
        spec = LeafSpec(build_subject(cn), cn, names, BUILTIN_PROFILES[profile], 30)
        builder = build_leaf_builder(
            spec, public_key, self.ca, serial_number=random_serial_number(), now=now(), public_url="https://localhost"
        )
        return builder.sign(self.ca_key, hashes.SHA256())

    def enroll(self, secret: str, body: bytes) -> tuple[int, dict[str, object]]:
        """POST /enroll/{secret}/csr: the invitation's names, the CSR's key; a spent or unknown link is refused."""
        with self.lock:
            invitation = self.invitations.get(secret)
            if invitation is None:
                return 404, problem(404, "Not Found", "this invitation link is not known")
            if invitation.spent:
                return 410, problem(410, "Gone", "this invitation link has been used already")
            try:
                request = read_request(load_csr(json.loads(body)["csr"].encode()))
            except (InvalidCSRError, ValueError, KeyError, TypeError) as exc:
                return 400, problem(400, "Bad Request", str(exc))
            certificate = self._sign(request.public_key, invitation.cn, invitation.sans, "client")
            invitation.spent = True
            self.issued.append(certificate)
        pem = certificate.public_bytes(Encoding.PEM).decode()
        return 201, {
            "serial": format(certificate.serial_number, "x"),
            "certificate": pem,
            "chain": [self.ca.public_bytes(Encoding.PEM).decode()],
            "cn": invitation.cn,
            "sans": [format_general_name(name) for name in certificate.extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value],
            "not_before": certificate.not_valid_before_utc.isoformat(),
            "not_after": certificate.not_valid_after_utc.isoformat(),
            "fingerprint_sha256": certificate.fingerprint(hashes.SHA256()).hex(),
            "profile": "client",
        }


def problem(status: int, title: str, detail: str) -> dict[str, object]:
    return {"type": "about:blank", "title": title, "status": status, "detail": detail}


def serve(site: EnrollSite, port: int) -> ThreadingHTTPServer:
    """Starts the site on https://localhost:port in a daemon thread; `.shutdown()` stops it."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet: the test reads `site.seen`
            pass

        def do_GET(self) -> None:
            self._record(b"")
            parts = self.path.split("/")
            if self.path.startswith("/enroll/static/") and len(parts) == 4 and parts[3].endswith(".js"):
                script = STATIC.joinpath(parts[3])
                if script.is_file():
                    return self._send(200, "text/javascript; charset=utf-8", script.read_bytes())
            elif len(parts) == 3 and parts[1] == "enroll" and parts[2] in site.invitations:
                invitation = site.invitations[parts[2]]
                page = PAGE.format(
                    cn=html.escape(invitation.cn), csr_url=f"/enroll/{invitation.secret}/csr",
                    filename=html.escape(invitation.cn.split()[0].lower()),
                )
                return self._send(200, "text/html; charset=utf-8", page.encode())
            self._send(404, "text/plain", b"not found")

        def do_POST(self) -> None:
            body = self.rfile.read(min(int(self.headers.get("Content-Length", "0")), 65536))
            self._record(body)
            parts = self.path.split("/")
            if len(parts) == 4 and parts[1] == "enroll" and parts[3] == "csr":
                status, answer = site.enroll(parts[2], body)
                media = "application/json" if status == 201 else "application/problem+json"
                return self._send(status, media, json.dumps(answer).encode())
            self._send(404, "text/plain", b"not found")

        def _record(self, body: bytes) -> None:
            with site.lock:
                site.seen.append(Seen(self.command, self.path, self.headers.get("Content-Type", ""), body))

        def _send(self, status: int, media: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(site.cert_file, site.key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
