"""Bringing a database to the newest schema, only ever through the Alembic migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from service.db.session import Database

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(db: Database) -> None:
    """Runs pending migrations inside one write transaction (on SQLite, under BEGIN IMMEDIATE)."""
    config = alembic_config()
    with db.engine.execution_options(pocketca_write=True).begin() as connection:
        if connection.dialect.name == "postgresql":  # replicas starting together migrate one after the other
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('pocketca:migrate'))")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def is_current(db: Database) -> bool:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head
