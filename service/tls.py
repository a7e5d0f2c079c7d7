"""TLS: the only place SSL contexts are built; the session-ticket keys every worker shares; the ASGI TLS
extension of a connection; the server certificate reloaded into the live context. How uvicorn serves with them
is service.server's."""

from __future__ import annotations

import ctypes
import functools
import logging
import ssl
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509

from service.ca.keys import load_private_key, public_keys_match
from service.datadir.layout import DataPaths
from service.errors import ConfigurationError

log = logging.getLogger("pocketca.tls")

# TLS 1.2 only with forward-secret AEAD suites; TLS 1.3 suites are all strong and are left as OpenSSL has them.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def build_server_context(paths: DataPaths) -> ssl.SSLContext:
    """Server certificate from the data dir; client certificates optional, verified against our CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(paths.server_cert, paths.server_key)
    # every issuer (the current one and those a rotation retired), trusted as anchors themselves (partial chains):
    # a client certificate is accepted when one of our issuers signed it, never for chaining to a shared root
    context.load_verify_locations(cadata=paths.trust_pem().decode())
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    # OPTIONAL: anyone may fetch /ca or /crl; a certificate that is presented must verify, or the
    # handshake fails. OpenSSL's default purpose for a server checks the client's EKU (clientAuth).
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def build_client_context(
    ca_file: Path | str, cert_file: Path | str | None = None, key_file: Path | str | None = None
) -> ssl.SSLContext:
    """What httpx clients use: trust only our CA, optionally present a client certificate."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None:
        context.load_cert_chain(str(cert_file), str(key_file) if key_file is not None else None)
    return context


TICKET_KEYS_BYTES = 80  # OpenSSL's ticket key block: 16 bytes key name, 32 HMAC secret, 32 AES key
_SSL_CTRL_SET_TLSEXT_TICKET_KEYS = 59


def share_session_tickets(context: ssl.SSLContext, keys: bytes) -> bool:
    """Makes `context` seal TLS session tickets with `keys`, so that every worker given the same keys resumes
    the sessions of the others (each SSL_CTX otherwise makes random keys of its own, and a client whose next
    connection lands on another worker pays a full handshake). Resuming is safe here because revocation and
    expiry are checked in the app on every request, not only in the handshake.

    Python's ssl has no API for this; OpenSSL's SSL_CTX_ctrl(SSL_CTRL_SET_TLSEXT_TICKET_KEYS) does. The SSL_CTX
    pointer is read from the SSLContext object (the field after PyObject_HEAD) and checked against the context
    before use: False, and nothing touched, when it does not match or libssl cannot be reached."""
    if len(keys) != TICKET_KEYS_BYTES:
        raise ValueError(f"ticket keys are {TICKET_KEYS_BYTES} bytes")
    try:
        libssl = _libssl()
        pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
        if not pointer or libssl.SSL_CTX_get_options(pointer) != context.options:
            return False
        if libssl.SSL_CTX_get_verify_mode(pointer) != int(context.verify_mode):
            return False
        buffer = ctypes.create_string_buffer(keys, len(keys))
        return bool(libssl.SSL_CTX_ctrl(pointer, _SSL_CTRL_SET_TLSEXT_TICKET_KEYS, len(keys), buffer))
    except (OSError, AttributeError, ValueError):
        return False


@functools.cache
def _libssl() -> ctypes.CDLL:
    """The libssl that the _ssl module itself loaded (never a second copy)."""
    import _ssl

    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "/libssl.so" in line}
    if len(paths) != 1:
        raise OSError(f"expected one loaded libssl, found {sorted(paths) or 'none'} (for {_ssl.__name__})")
    libssl = ctypes.CDLL(paths.pop())
    libssl.SSL_CTX_get_options.restype = ctypes.c_uint64
    libssl.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
    libssl.SSL_CTX_get_verify_mode.restype = ctypes.c_int
    libssl.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
    libssl.SSL_CTX_ctrl.restype = ctypes.c_long
    libssl.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    return libssl


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


class CertificateReloader:
    """Puts a re-issued server certificate into the live SSLContext: `load_cert_chain` on the context applies
    to every handshake after it, so new connections get the new certificate without a restart, while
    connections already open keep theirs. The pair is read once, checked to match, and loaded from a private
    copy: a half-written renewal (a new key beside the old certificate) is skipped until it is whole, and the
    context never holds a certificate without its key."""

    def __init__(self, context: ssl.SSLContext, paths: DataPaths) -> None:
        self.context = context
        self.paths = paths
        self.seen = self._stamp()

    def _stamp(self) -> tuple[int, int]:
        try:
            return (self.paths.server_cert.stat().st_mtime_ns, self.paths.server_key.stat().st_mtime_ns)
        except OSError:
            return (0, 0)

    def check(self) -> bool:
        """True when a new certificate was loaded."""
        stamp = self._stamp()
        if stamp == self.seen:
            return False
        try:
            chain, key = self.paths.server_cert.read_bytes(), self.paths.server_key.read_bytes()
            leaf = x509.load_pem_x509_certificate(chain)
            if not public_keys_match(load_private_key(key).public_key(), leaf.public_key()):
                return False  # caught between the two renames: the next look finds the pair whole
            with tempfile.NamedTemporaryFile(dir=self.paths.root, prefix=".tls-", suffix=".pem") as copy:
                copy.write(chain + b"\n" + key)
                copy.flush()
                self.context.load_cert_chain(copy.name)
        except (OSError, ValueError, ssl.SSLError, ConfigurationError) as exc:
            log.warning("server certificate not reloaded: %s", exc)
            return False
        self.seen = stamp
        log.info("server certificate reloaded: serial %x, valid until %s", leaf.serial_number, leaf.not_valid_after_utc)
        return True
