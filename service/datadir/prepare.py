"""Everything `serve` needs before any worker starts, made under an exclusive file lock, so two `pocketca serve`
started at once do not both make a CA or both migrate: the CA, the schema, the bootstrap admin token, the
service's TLS certificate."""

from __future__ import annotations

from dataclasses import dataclass

from service.authority import Authority, LocalCaller
from service.datadir.build import build_authority
from service.datadir.ceremony import DEFAULT_CA_NAME, make_ca
from service.datadir.layout import DataPaths, ensure_data_dir, exclusive, has_ca
from service.datadir.schema import upgrade
from service.datadir.server_cert import ensure_server_certificate
from service.datadir.urls import record_urls
from service.db.session import check_database
from service.keys.files import write_private_file
from service.settings import Settings


@dataclass(frozen=True)
class Prepared:
    paths: DataPaths
    admin_token: str | None  # set only on the run that made it, to be printed once
    server_certificate_issued: bool


def prepare(settings: Settings) -> Prepared:
    """Idempotent: makes what is missing, renews the server certificate when due, and touches nothing else."""
    paths = ensure_data_dir(settings)
    with exclusive(paths):
        settings.passphrase()
        check_database(settings.sqlalchemy_url)  # before a CA key is made for a database that cannot be used
        if not has_ca(paths):
            make_ca(settings, paths, settings.key_type, DEFAULT_CA_NAME)
        record_urls(settings, paths)
        authority = build_authority(settings)
        try:
            with authority.db.lock("bootstrap"):  # one replica at a time: schema and admin token made once
                upgrade(authority.db, authority.ca_certificate)
                token = _ensure_admin_token(authority, paths)
            issued = ensure_server_certificate(authority, paths, settings.server_names)
            for publisher in authority.crl_publishers.values():
                publisher.refresh(wait=True)  # the first GET /crl never waits for a build
        finally:
            authority.close()
    return Prepared(paths=paths, admin_token=token, server_certificate_issued=issued)


def _ensure_admin_token(authority: Authority, paths: DataPaths) -> str | None:
    if authority.has_admin_token():
        return None
    new = authority.create_token(scope="admin", caller=LocalCaller("serve"))
    write_private_file(paths.admin_token, (new.token + "\n").encode())
    return new.token
