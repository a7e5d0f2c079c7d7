"""Everything `serve` needs before any worker starts, made under an exclusive file lock, so two `pocketca serve`
started at once do not both make a CA or both migrate: the CA, the schema, the bootstrap admin token, the
service's TLS certificate, each issuer's first CRL.

It needs the database and the issuers' key stores; an authority is composed only on a start that issues the
service's certificate (the first, after a rotation, when it is due or revoked)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from service.authority import Authority, LocalCaller, utcnow
from service.authority.audit import Auditor
from service.authority.crls import DEFAULT_CRL_LIFETIME, CRLPublisher
from service.authority.tokens import TokenManager
from service.authority.values import Issuer
from service.ca.issue import issuer_id
from service.datadir.build import compose_authority
from service.datadir.ceremony import DEFAULT_CA_NAME, make_ca
from service.datadir.issuers import KeyAccess, load_ca, load_retired
from service.datadir.layout import DataPaths, ensure_data_dir, exclusive, has_ca, load_parents
from service.datadir.profiles import load_profiles
from service.datadir.schema import upgrade
from service.datadir.server_cert import issue_server_certificate, needs_server_certificate
from service.datadir.urls import record_urls
from service.db.session import Database, check_database
from service.keys import KeyStore
from service.keys.files import write_private_file
from service.settings import Settings


@dataclass(frozen=True)
class Prepared:
    paths: DataPaths
    admin_token: str | None  # set only on the run that made it, to be printed once
    server_certificate_issued: bool


def prepare(settings: Settings, keys: KeyAccess | None = None) -> Prepared:
    """Idempotent: makes what is missing, renews the server certificate when due, and touches nothing else.
    `keys`: what opens the CA keys, read by the caller once (from `settings` when not given)."""
    paths = ensure_data_dir(settings)
    with exclusive(paths):
        keys = keys or KeyAccess.from_settings(settings)  # an unreadable passphrase file stops us here
        check_database(settings.sqlalchemy_url)  # before a CA key is made for a database that cannot be used
        if not has_ca(paths):
            make_ca(keys, paths, settings.key_type, DEFAULT_CA_NAME)
        record_urls(settings, paths)
        signer, certificate = load_ca(settings, keys)
        current = Issuer(issuer_id(certificate), certificate, signer, tuple(load_parents(paths.root)))
        profiles = load_profiles(paths)
        db = Database(settings.sqlalchemy_url)
        issuers = [current]
        authority: Authority | None = None
        try:
            issuers += load_retired(settings, db, utcnow(), keys) if paths.retired() else []
            with db.lock("bootstrap"):  # one replica at a time: schema and admin token made once
                upgrade(db, certificate)
                token = _ensure_admin_token(TokenManager(db, Auditor(db, utcnow), profiles, utcnow), paths)
            issued = needs_server_certificate(paths, settings.server_names, certificate, db, utcnow())
            if issued:
                authority = compose_authority(settings, db, signer, certificate, issuers[1:], profiles)
                issue_server_certificate(authority, paths, settings.server_names)
            for issuer in issuers:  # the first GET /crl never waits for a build
                publisher = CRLPublisher(
                    db,
                    issuer.signer,
                    issuer.certificate,
                    lifetime=DEFAULT_CRL_LIFETIME,
                    clock=utcnow,
                    issuer_id=issuer.id,
                )
                publisher.refresh(wait=True)
        finally:
            if authority is not None:
                authority.close()  # its committer and throttle stop; the database and key stores close below
            for issuer in issuers:
                cast(KeyStore, issuer.signer).close()  # each came from load_issuer_files
            db.dispose()
    return Prepared(paths=paths, admin_token=token, server_certificate_issued=issued)


def _ensure_admin_token(tokens: TokenManager, paths: DataPaths) -> str | None:
    if tokens.any_admin():
        return None
    new = tokens.create(scope="admin", caller=LocalCaller("serve"))
    write_private_file(paths.admin_token, (new.token + "\n").encode())
    return new.token
