"""Bringing a database to the newest schema, only ever through the Alembic migrations.

Alembic is imported only when there is something to migrate: on a database already at the newest revision
(every start but the first after an upgrade) `upgrade` is one query, which saves a third of a second of
start-up (bench/SPEED.md).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from service.db.session import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
_REVISION = re.compile(r"^(down_revision|revision)\b[^=]*=\s*['\"]?([\w]+)['\"]?", re.MULTILINE)


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@functools.cache
def head_revision() -> str:
    """The newest revision, read from the migration files (a linear history) without importing Alembic;
    tests/db/test_migrations.py checks it against Alembic's own answer."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict(_REVISION.findall(path.read_text()))
        if "revision" not in found:  # __init__.py
            continue
        revisions.add(found["revision"])
        if found.get("down_revision", "None") != "None":
            parents.add(found["down_revision"])
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def stored_revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        try:
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except sa_exc.DBAPIError:  # no such table yet: a new database
            return None
    return str(revision) if revision is not None else None


def upgrade(db: Database, *, current_issuer: str | None = None) -> None:
    """Runs pending migrations inside one write transaction (on SQLite, under BEGIN IMMEDIATE). `current_issuer`:
    the issuer id of the CA in the data dir, which migration 0017 gives rows from before issuers (the database
    does not hold the CA certificate)."""
    if stored_revision(db) == head_revision():
        return
    from alembic import command

    config = alembic_config()
    with db.engine.execution_options(pocketca_write=True).begin() as connection:
        if connection.dialect.name == "postgresql":  # replicas starting together migrate one after the other
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('pocketca:migrate'))")
        config.attributes["connection"] = connection
        config.attributes["current_issuer"] = current_issuer
        command.upgrade(config, "head")


def is_current(db: Database) -> bool:
    return stored_revision(db) == head_revision()
