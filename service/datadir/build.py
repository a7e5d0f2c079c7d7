"""What a data dir serves with: the authority (its issuers, profiles, recorded roots' CRLs), and the token manager
the local `pocketca token` commands use without the CA key."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from cryptography import x509

from service.authority import Authority, utcnow
from service.authority.audit import Auditor
from service.authority.rootcrls import RootCRLs
from service.authority.tokens import TokenManager
from service.authority.values import Issuer
from service.ca.issue import Signer
from service.ca.profiles import Profile
from service.datadir.issuers import KeyAccess, load_ca, load_retired
from service.datadir.layout import DataPaths, has_ca, load_parents
from service.datadir.profiles import load_profiles
from service.datadir.schema import require_current
from service.db.session import Database, check_database
from service.errors import NoCAError
from service.settings import Settings


def build_authority(settings: Settings, keys: KeyAccess | None = None) -> Authority:
    """The authority the data dir serves with; `keys` read from `settings` when not given."""
    keys = keys or KeyAccess.from_settings(settings)
    keystore, certificate = load_ca(settings, keys)
    paths = DataPaths(settings.data_dir)
    profiles = load_profiles(paths)
    db = Database(settings.sqlalchemy_url)
    retired = load_retired(settings, db, utcnow(), keys) if paths.retired() else []
    return compose_authority(settings, db, keystore, certificate, retired, profiles)


def compose_authority(
    settings: Settings,
    db: Database,
    signer: Signer,
    certificate: x509.Certificate,
    retired: list[Issuer],
    profiles: Mapping[str, Profile],
) -> Authority:
    """An authority over what is already open: the database, the current issuer's key store, the retired ones."""
    paths = DataPaths(settings.data_dir)
    roots = {root_id: (root, paths.root_crl(root_id)) for root_id, root in paths.roots().items()}
    return Authority(
        db,
        signer,
        certificate,
        public_url=settings.public_url,
        publication_url=settings.publication_url,
        profiles=profiles,
        issue_rate_per_minute=settings.issue_rate_per_minute,
        auth_failures_per_minute=settings.auth_failures_per_minute,
        parents=load_parents(paths.root),
        retired=retired,
        root_crls=RootCRLs(roots, utcnow),
    )


def build_token_manager(settings: Settings) -> TokenManager:
    """Tokens need the database and the profiles, never the CA key (`pocketca token ...` does not decrypt it)."""
    paths = DataPaths(settings.data_dir)
    if not has_ca(paths):
        raise NoCAError(paths.root)
    db = Database(settings.sqlalchemy_url)
    return TokenManager(db, Auditor(db, utcnow), load_profiles(paths), utcnow)


@contextlib.contextmanager
def local_authority(settings: Settings) -> Iterator[Authority]:
    """The authority for one local command (`issue`, `ca list`), over a database at the newest schema."""
    check_database(settings.sqlalchemy_url)
    authority = build_authority(settings)
    try:
        require_current(authority.db)
        yield authority
    finally:
        authority.close()


@contextlib.contextmanager
def local_tokens(settings: Settings) -> Iterator[TokenManager]:
    """Token commands need the database, never the CA key."""
    check_database(settings.sqlalchemy_url)
    tokens = build_token_manager(settings)
    try:
        require_current(tokens.db)
        yield tokens
    finally:
        tokens.db.dispose()
