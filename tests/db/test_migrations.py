"""The schema comes only from Alembic, and the models agree with it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, text

from service.db import migrate
from service.db.base import Base
from service.db.models import CertificateRecord, CRLRecord
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


def _rows(db: Database, table: str) -> list[dict[str, object]]:
    with db.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]


def test_rows_from_before_issuers_go_to_the_current_ca_once_as_adopt_did(tmp_path: Path) -> None:
    """Revision 0017 does what `CertificateRepository.adopt(current CA)` did at every start until it: certificates
    and CRLs with no issuer go to the data dir's CA; rows with an issuer, and every other column, stay as they
    were."""
    db = Database(make_settings(tmp_path / "data").sqlalchemy_url if PG_URL else f"sqlite:///{tmp_path / 'm.db'}")
    config = migrate.alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0016")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    certificate = {
        "cn": "old",
        "subject": "CN=old",
        "sans": [],
        "profile": "server",
        "not_before": now,
        "not_after": now + dt.timedelta(days=90),
        "status": "valid",
        "fingerprint_sha256": "00" * 32,
        "issued_by": "token:t1",
        "issued_via": "token",
        "created_at": now,
        "der": b"\x30\x00",
    }
    with db.engine.begin() as connection:  # as the code before issuers wrote them: no issuer_id
        rows = [{**certificate, "serial": "0a"}, {**certificate, "serial": "0b", "issuer_id": "f" * 16}]
        connection.execute(insert(CertificateRecord.__table__), rows)
        connection.execute(
            insert(CRLRecord.__table__),
            [{"number": 1, "this_update": now, "next_update": now, "revision": 0, "der": b"\x30\x00"}],
        )
    before = {table: _rows(db, table) for table in ("certificates", "crls")}
    adopted = {
        table: [{**row, "issuer_id": row["issuer_id"] or "0123456789abcdef"} for row in rows]
        for table, rows in before.items()
    }
    with pytest.raises(RuntimeError, match="before issuers"):  # not without the CA that signed them
        migrate.upgrade(db)
    assert {table: _rows(db, table) for table in before} == before
    migrate.upgrade(db, current_issuer="0123456789abcdef")
    assert migrate.is_current(db)
    assert {table: _rows(db, table) for table in before} == adopted
    db.dispose()
