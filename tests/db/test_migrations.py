"""The schema comes only from Alembic, and the models agree with it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from service.db import migrate
from service.db.base import Base
from service.db.session import Database
from tests.conftest import PG_URL, make_settings


def test_upgrade_makes_the_schema_the_models_describe(tmp_path: Path) -> None:
    """On SQLite, and on PostgreSQL in the PostgreSQL pass: the same migrations, `alembic check` clean on both."""
    db = Database(make_settings(tmp_path / "data").sqlalchemy_url if PG_URL else f"sqlite:///{tmp_path / 'm.db'}")
    assert not migrate.is_current(db)
    migrate.upgrade(db)
    assert migrate.is_current(db)
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []  # what `alembic check` says: no change left to autogenerate
    indexes = {ix["name"] for ix in inspect(db.engine).get_indexes("certificates")}
    assert {"ix_certificates_cn", "ix_certificates_status_id_not_after", "ix_certificates_cn_status"} <= indexes
    uniques = inspect(db.engine).get_unique_constraints("certificates")
    assert {"name": "uq_certificates_serial", "column_names": ["serial"]}.items() <= uniques[0].items()
    db.dispose()


def test_upgrade_is_idempotent_and_downgrade_round_trips(tmp_path: Path) -> None:
    db = Database(make_settings(tmp_path / "data").sqlalchemy_url if PG_URL else f"sqlite:///{tmp_path / 'm.db'}")
    migrate.upgrade(db)
    migrate.upgrade(db)
    config = migrate.alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(db)
    assert {"certificates", "tokens", "crls", "counters"} <= set(inspect(db.engine).get_table_names())
    db.dispose()


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    """`upgrade` skips Alembic when the database is at this revision: it must be the one Alembic would reach."""
    from alembic.script import ScriptDirectory

    assert migrate.head_revision() == ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
