"""A data dir with an offline root, an issuing intermediate, certificates of it, and a rotation: what the tests of
retired issuers and the root's CRL share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from service.authority import Authority, LocalCaller
from service.ca.issue import issuer_id
from service.datadir.build import build_authority
from service.datadir.layout import load_parents
from service.datadir.offline_root import init_intermediate
from service.datadir.prepare import prepare
from service.datadir.rotation import rotate_with_root
from service.settings import Settings
from tests.helpers import p256

ROOT_PASSPHRASE = b"correct horse battery"


@dataclass(frozen=True)
class Hierarchy:
    settings: Settings
    root_file: Path
    root: x509.Certificate
    old: x509.Certificate  # the first issuing CA, retired by a rotation
    good: x509.Certificate  # issued by the old CA, valid
    revoked: x509.Certificate  # issued by the old CA, revoked (keyCompromise)

    @property
    def root_id(self) -> str:
        return issuer_id(self.root)

    @property
    def old_id(self) -> str:
        return issuer_id(self.old)


def make_hierarchy(settings: Settings, root_file: Path, *, rotate: bool = True) -> Hierarchy:
    """`init --intermediate`, the first start, two certificates of the first issuer (one revoked), then (by default)
    `ca rotate --root-file`: the first issuer is retired and still answers for them."""
    init_intermediate(settings, root_file, ROOT_PASSPHRASE)
    prepare(settings)
    authority = build_authority(settings)
    try:
        old = authority.ca_certificate
        good, revoked = (
            authority.issue_for_key(
                p256().public_key(), cn=f"{name}.example.com", sans=[], profile="server"
            ).certificate
            for name in ("good", "revoked")
        )
        authority.revoke(format(revoked.serial_number, "x"), reason="keyCompromise", caller=LocalCaller("test"))
    finally:
        authority.close()
    root = load_parents(settings.data_dir)[-1]
    if rotate:
        rotate_with_root(settings, root_file, ROOT_PASSPHRASE)
        prepare(settings)
    return Hierarchy(settings, root_file, root, old, good, revoked)


def build(hierarchy: Hierarchy) -> Authority:
    return build_authority(hierarchy.settings)
