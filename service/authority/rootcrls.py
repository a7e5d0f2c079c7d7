"""The offline root's CRL: signed by `pocketca ca crl` (the root key never comes here), served from the data dir.

Each root a chain of ours ends at has one file, `<data dir>/root-crls/<root id>.crl`, which `ca crl` replaces
atomically. Every worker looks at the file when asked for that root's CRL (one stat), and reads it again only when
it changed, so a new CRL is served at once, without a restart, by every worker -- and by every replica whose data
dir has the file. A file that does not parse, or that the root did not sign, is refused (logged, the previous one
stays); so is one whose CRL number is lower than the one being served: the newest stays.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.authority.values import CRLDocument
from service.ca.crl import crl_number, load_crl_of
from service.ca.issue import issuer_id, root_key_identifier

log = logging.getLogger("pocketca.crl")
WARN_BEFORE = dt.timedelta(days=14)  # readyz warns this close to a root CRL's nextUpdate (or at 3/4 of its life)


@dataclass(frozen=True)
class RootCRL:
    root_id: str
    root: x509.Certificate
    document: CRLDocument
    revoked: frozenset[int]  # the serials of the CAs it revokes

    @property
    def entries(self) -> int:
        return len(self.revoked)


class RootCRLs:
    def __init__(self, roots: Mapping[str, tuple[x509.Certificate, Path]], clock: Callable[[], dt.datetime]) -> None:
        """`roots`: root id -> (the root's certificate, the file its CRL is published in)."""
        self.roots = dict(roots)
        self.clock = clock
        # a root's own CRL distribution point names it by key identifier (service.ca.issue.build_root_builder)
        self.aliases = {
            key_id: root_id for root_id, (root, _) in self.roots.items() if (key_id := root_key_identifier(root))
        }
        self._seen: dict[str, tuple[int, int, int]] = {}
        self._cached: dict[str, RootCRL] = {}
        self._lock = threading.Lock()

    def current(self, root_id: str) -> RootCRL | None:
        """The newest CRL published for this root (None: none yet, or not one of our roots), by the root's issuer id
        or its key identifier."""
        root_id = self.aliases.get(root_id, root_id)
        found = self.roots.get(root_id)
        if found is None:
            return None
        root, path = found
        try:
            status = os.stat(path)
        except OSError:
            return self._cached.get(root_id)
        stamp = (status.st_mtime_ns, status.st_size, status.st_ino)
        if self._seen.get(root_id) == stamp:
            return self._cached.get(root_id)
        with self._lock:
            self._seen[root_id] = stamp
            try:
                crl = load_crl_of(path.read_bytes(), root)
            except (OSError, ValueError) as exc:
                log.warning("root CRL %s not loaded: %s", path, exc)
                return self._cached.get(root_id)
            loaded = RootCRL(root_id, root, _document(crl), frozenset(r.serial_number for r in crl))
            cached = self._cached.get(root_id)
            if cached is not None and cached.document.number > loaded.document.number:
                log.warning(
                    "root CRL %s not loaded: its number %d is lower than the %d served",
                    path,
                    loaded.document.number,
                    cached.document.number,
                )
                return cached
            self._cached[root_id] = loaded
            return loaded

    def revokes(self, certificate: x509.Certificate, root: x509.Certificate) -> bool:
        """Whether `root`'s newest CRL lists `certificate` (an issuing CA it signed)."""
        published = self.current(issuer_id(root))
        return published is not None and certificate.serial_number in published.revoked

    def published(self) -> Iterator[RootCRL]:
        for root_id in self.roots:
            found = self.current(root_id)
            if found is not None:
                yield found

    def problems(self) -> tuple[list[str], list[str]]:
        """(expired, near): one line each for the root CRLs past their nextUpdate, and for those close to it."""
        now, expired, near = self.clock(), [], []
        for crl in self.published():
            document = crl.document
            what = f"the root CRL {document.number} of {crl.root.subject.rfc4514_string()} ({crl.root_id})"
            todo = "sign the next with `pocketca ca crl --root-file FILE`"
            if now >= document.next_update:
                expired.append(f"{what} passed its nextUpdate at {document.next_update.isoformat()}: {todo}")
            elif now >= document.next_update - min(WARN_BEFORE, (document.next_update - document.this_update) / 4):
                near.append(f"{what} reaches its nextUpdate at {document.next_update.isoformat()}: {todo}")
        return expired, near


def _document(crl: x509.CertificateRevocationList) -> CRLDocument:
    assert crl.next_update_utc is not None  # load_crl_of refuses a CRL without one
    return CRLDocument(
        number=crl_number(crl),
        this_update=crl.last_update_utc,
        next_update=crl.next_update_utc,
        der=crl.public_bytes(Encoding.DER),
    )
