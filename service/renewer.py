"""`pocketca renew`: one renewal, or (`--daemon`) a certificate kept renewed without cron.

A certificate with clientAuth renews over mTLS; one without (profile `server`) cannot pass a TLS client
handshake, so it sends a renewal token signed by its own key (authority.renewal). Either way the key rotates,
each file is replaced atomically (the key first, so a reader that sees the new certificate finds its key), and
`--exec` runs after each change.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID

from service.authority.renewal import build_renewal_token
from service.ca.csr import build_csr
from service.ca.inspect import get_sans, has_extended_key_usage
from service.ca.keys import dump_private_key
from service.ca.names import get_common_name
from service.client import ClientError, PocketCAClient
from service.errors import ConfigurationError, UnreachableError
from service.keys.files import write_private_file, write_public_file

RENEW_AT = 2 / 3  # of the lifetime
JITTER = 1 / 20  # of the lifetime: renewals of many certificates issued together spread out, always before 2/3
FIRST_RETRY = 1.0  # seconds; doubled after each failure
MAX_RETRY = 300.0


@dataclass(frozen=True)
class RenewalTarget:
    server: str
    cert: Path
    key: Path
    ca_file: Path | None = None
    validity_days: int | None = None
    exec_command: str | None = None


def load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the certificate {path}: {exc}") from None


def uses_mtls(certificate: x509.Certificate) -> bool:
    """mTLS when the certificate may authenticate a TLS client; the renewal token otherwise."""
    return has_extended_key_usage(certificate, ExtendedKeyUsageOID.CLIENT_AUTH)


def renewal_due(certificate: x509.Certificate, jitter: float) -> dt.datetime:
    """Two thirds into the certificate's life, less `jitter` (0..1) of JITTER of the life."""
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    life = end - start
    return start + life * RENEW_AT - life * (JITTER * jitter)


def renew_once(target: RenewalTarget) -> dict[str, Any]:
    """Renews now and writes the new key and certificate; returns the server's answer."""
    current = load_certificate(target.cert)
    new_key = ec.generate_private_key(ec.SECP256R1())  # a renewal rotates the key
    csr = build_csr(new_key, get_common_name(current.subject) or "", list(get_sans(current)))
    csr_pem = csr.public_bytes(Encoding.PEM).decode()
    server = target.server.rstrip("/")
    if uses_mtls(current):
        with PocketCAClient(server, ca_file=target.ca_file, cert_file=target.cert, key_file=target.key) as client:
            result = client.renew(csr_pem, validity_days=target.validity_days)
    else:
        token = build_renewal_token(
            _load_key(target.key),
            current,
            audience=f"{server}/csr",
            now=dt.datetime.now(dt.UTC),
            jti=secrets.token_urlsafe(18),
        )
        with PocketCAClient(server, ca_file=target.ca_file, token=token) as client:
            result = client.renew(csr_pem, validity_days=target.validity_days)
    write_private_file(target.key, dump_private_key(new_key))
    write_public_file(target.cert, str(result["certificate"]).encode())
    return result


def _load_key(path: Path) -> Any:
    try:
        return load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"cannot read the private key {path} (PEM, unencrypted): {exc}") from None


def run_exec(command: str | None, say: Callable[[str], None]) -> int:
    if not command:
        return 0
    done = subprocess.run(["/bin/sh", "-c", command], check=False)  # noqa: S603 (the operator's hook)
    if done.returncode != 0:
        say(f"pocketca: --exec command exited with {done.returncode}")
    return done.returncode


def _say(text: str) -> None:
    print(text, flush=True)


def _warn(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_daemon(target: RenewalTarget, *, threshold: dt.timedelta | None = None) -> int:
    """Renews whenever due, until SIGTERM or SIGINT (then exit 0). A server that is down or failing is retried
    with a doubling backoff; a refusal (4xx other than 429) ends the daemon with 4, as the command would."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    jitters: dict[int, float] = {}
    retry = FIRST_RETRY
    try:
        _say(f"pocketca renew --daemon: keeping {target.cert} renewed")
        while not stop.is_set():
            current = load_certificate(target.cert)
            jitter = jitters.setdefault(current.serial_number, random.random())  # noqa: S311 (spreading, not secrecy)
            due = renewal_due(current, jitter) if threshold is None else current.not_valid_after_utc - threshold
            wait = (due - dt.datetime.now(dt.UTC)).total_seconds()
            if wait > 0:
                stop.wait(min(wait, 3600.0))  # wakes hourly at most: a certificate replaced by hand is re-read
                continue
            try:
                result = renew_once(target)
            except ClientError as exc:
                if exc.status < 500 and exc.status != 429:
                    _warn(f"pocketca: the server refused the renewal: {exc}")
                    return 4
                _warn(f"pocketca: renewal failed ({exc}); next try in {retry:g} s")
            except (httpx.HTTPError, UnreachableError) as exc:
                _warn(f"pocketca: cannot reach the server ({exc or type(exc).__name__}); next try in {retry:g} s")
            else:
                retry = FIRST_RETRY
                _say(f"renewed: {result['serial']} valid until {result['not_after']}")
                run_exec(target.exec_command, _warn)
                continue
            stop.wait(retry)
            retry = min(retry * 2, MAX_RETRY)
        _say("pocketca renew --daemon: stopped")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
