"""The service's own TLS certificate: issued by its CA at `serve` and again, while it runs, at two thirds of its
life, when its names change, after a rotation, or at once when it is revoked."""

from __future__ import annotations

import datetime as dt
import logging
import threading

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from service.authority import Authority, LocalCaller
from service.ca.inspect import format_serial, get_sans
from service.ca.keys import dump_private_key
from service.ca.names import format_general_name, parse_general_name
from service.datadir.layout import DataPaths, exclusive
from service.db import certificates as certificate_rows
from service.db.session import Database
from service.errors import SettingError
from service.keys.files import write_private_file, write_public_file

log = logging.getLogger("pocketca.bootstrap")

SERVER_CERT_DAYS = 90


def server_certificate_due(certificate: x509.Certificate, names: list[str], now: dt.datetime) -> bool:
    """Due past two thirds of its life, or when the configured names changed."""
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now >= start + (end - start) * 2 / 3:
        return True
    try:
        wanted = {format_general_name(parse_general_name(name)) for name in names}
    except ValueError as exc:
        raise SettingError("POCKETCA_SERVER_NAMES", str(exc)) from None
    return set(get_sans(certificate)) != wanted


def is_revoked(db: Database, certificate: x509.Certificate) -> bool:
    """Whether the database says this certificate is revoked (an indexed read on the hot path's connection)."""
    state = certificate_rows.identity_state(db, format_serial(certificate.serial_number))
    return state is not None and state[0] == "revoked"


def needs_server_certificate(
    paths: DataPaths, names: list[str], ca_certificate: x509.Certificate, db: Database, now: dt.datetime
) -> bool:
    """None yet, or the one there is due, revoked, or signed by an issuer a rotation retired."""
    if not (paths.server_cert.exists() and paths.server_key.exists()):
        return True
    current = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    rotated = current.issuer != ca_certificate.subject  # after a rotation the new issuer signs it
    due = server_certificate_due(current, names, now) or is_revoked(db, current)
    return rotated or due


def ensure_server_certificate(authority: Authority, paths: DataPaths, names: list[str]) -> bool:
    if not needs_server_certificate(paths, names, authority.ca_certificate, authority.db, authority.clock()):
        return False
    issue_server_certificate(authority, paths, names)
    return True


def issue_server_certificate(authority: Authority, paths: DataPaths, names: list[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    issued = authority.issue_for_key(
        key.public_key(),
        cn=names[0],
        sans=names,
        profile="server",
        validity_days=SERVER_CERT_DAYS,
        caller=LocalCaller("serve"),
    )
    write_private_file(paths.server_key, dump_private_key(key))
    chain = [issued.certificate, *authority.chain]
    write_public_file(paths.server_cert, b"".join(c.public_bytes(Encoding.PEM) for c in chain))


class ServerCertificateKeeper:
    """A daemon thread per worker that re-issues the service's own TLS certificate while it runs, at two thirds
    of its life (as `serve` does at start), and at once when it is revoked (no client should be shown a
    certificate the service's own OCSP responder calls revoked). The file lock lets one worker re-issue; the
    others find it fresh. Each worker's TLS layer then loads the new files into its live context
    (tls.CertificateReloader)."""

    def __init__(self, authority: Authority, paths: DataPaths, names: list[str], *, interval: float = 2.0) -> None:
        self.authority = authority
        self.paths = paths
        self.names = names
        self.interval = interval
        self._seen: tuple[int, x509.Certificate | None] = (-1, None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pocketca-server-cert", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def due(self) -> bool:
        try:
            stamp = self.paths.server_cert.stat().st_mtime_ns
            if stamp != self._seen[0]:  # parsed once per change of the file, not every look
                self._seen = (stamp, x509.load_pem_x509_certificate(self.paths.server_cert.read_bytes()))
        except (OSError, ValueError):
            return True
        certificate = self._seen[1]
        if certificate is None or server_certificate_due(certificate, self.names, self.authority.clock()):
            return True
        try:
            return is_revoked(self.authority.db, certificate)
        except Exception:  # the database is away: keep serving what we have; /readyz and the CRL say so
            return False

    def renew_if_due(self) -> bool:
        if not self.due():
            return False
        with exclusive(self.paths):
            issued = ensure_server_certificate(self.authority, self.paths, self.names)
        if issued:
            log.info("server certificate re-issued")
        return issued

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.renew_if_due()
            except Exception:  # keep serving the current certificate; the next look tries again
                log.exception("server certificate renewal failed")
