"""The database brought to the newest schema by a data dir, which alone knows its CA: migration 0017 gives rows
from before issuers (revision 0009) to the CA that signed them all, the one in the data dir at the time."""

from __future__ import annotations

from cryptography import x509

from service.ca.issue import issuer_id
from service.db import migrate
from service.db.session import Database
from service.errors import ConfigurationError
from service.settings import Settings


def upgrade(db: Database, ca_certificate: x509.Certificate | None) -> None:
    """The newest schema (the caller holds `db.lock("bootstrap")`: one replica at a time); `ca_certificate` is the
    issuer that rows from before issuers, if any are left, belong to."""
    migrate.upgrade(db, current_issuer=issuer_id(ca_certificate) if ca_certificate is not None else None)


def create_schema(settings: Settings, ca_certificate: x509.Certificate) -> None:
    """The database at the newest schema, as `serve` leaves it: a data dir that `init` made serves every local
    command (`issue`, `token create`, ...) before the first `serve`. The admin token is still made by `serve`."""
    db = Database(settings.sqlalchemy_url)
    try:
        with db.lock("bootstrap"):
            upgrade(db, ca_certificate)
    finally:
        db.dispose()


def require_current(db: Database) -> None:
    """A local command works on a database `serve` (or `init`) brought to the newest schema, and migrates none."""
    if not migrate.is_current(db):
        raise ConfigurationError("the database is not initialised: run `pocketca serve` once first")
