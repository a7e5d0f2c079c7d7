"""TLS contexts: the server's (the only place one is built), and the ASGI TLS extension of a connection.

Every worker serves with the context `serve` built before forking them: forked copies of one SSL_CTX seal TLS
session tickets with the same keys (OpenSSL makes them in SSL_CTX_new), so a client resumes its session on
whichever worker its next connection lands. Resuming is safe here because revocation and expiry are checked in
the app on every request, not only in the handshake."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Protocol

# TLS 1.2 only with forward-secret AEAD suites; TLS 1.3 suites are all strong and are left as OpenSSL has them.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


class ServerFiles(Protocol):
    """Where the server's certificate, its key and the CAs it trusts for clients are (a data dir's layout)."""

    @property
    def root(self) -> Path: ...

    @property
    def server_cert(self) -> Path: ...

    @property
    def server_key(self) -> Path: ...

    def trust_pem(self) -> bytes: ...


def build_server_context(files: ServerFiles) -> ssl.SSLContext:
    """Server certificate from the data dir; client certificates optional, verified against our CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(files.server_cert, files.server_key)
    # every issuer (the current one and those a rotation retired), trusted as anchors themselves (partial chains):
    # a client certificate is accepted when one of our issuers signed it, never for chaining to a shared root
    context.load_verify_locations(cadata=files.trust_pem().decode())
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    # OPTIONAL: anyone may fetch /ca or /crl; a certificate that is presented must verify, or the
    # handshake fails. OpenSSL's default purpose for a server checks the client's EKU (clientAuth).
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[str, Any] | None:
    """The ASGI TLS extension for one connection (https://asgi.readthedocs.io/en/latest/specs/tls.html)."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
        "cipher_name": cipher[0] if cipher else None,
    }
