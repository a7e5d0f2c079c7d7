"""The server certificate reloaded into the live TLS context when a renewal replaces its files."""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
from collections.abc import Callable

from cryptography import x509

from service.ca.keys import load_private_key, public_keys_match
from service.errors import ConfigurationError
from service.serving.contexts import ServerFiles

log = logging.getLogger("pocketca.tls")  # the name operators' log filters know

RELOAD_INTERVAL = 1.0  # seconds between looks at the server certificate's files (two stat calls)


class CertificateReloader:
    """Puts a re-issued server certificate into the live SSLContext: `load_cert_chain` on the context applies
    to every handshake after it, so new connections get the new certificate without a restart, while
    connections already open keep theirs. The pair is read once, checked to match, and loaded from a private
    copy: a half-written renewal (a new key beside the old certificate) is skipped until it is whole, and the
    context never holds a certificate without its key."""

    def __init__(self, context: ssl.SSLContext, paths: ServerFiles) -> None:
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

    async def watch(self, should_exit: Callable[[], bool]) -> None:
        """Looks every RELOAD_INTERVAL until `should_exit()`."""
        while not should_exit():
            await asyncio.sleep(RELOAD_INTERVAL)
            self.check()
