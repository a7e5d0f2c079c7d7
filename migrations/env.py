"""Alembic environment: runs against the connection `service.db.migrate` hands over, or the configured URL."""

from __future__ import annotations

from pathlib import Path

from alembic import context
from cryptography import x509
from sqlalchemy import Connection

from service.ca.issue import issuer_id
from service.db.base import Base
from service.db.models import CertificateRecord  # noqa: F401  (registers the tables)
from service.db.session import make_engine
from service.settings import get_settings

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table instead
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _current_issuer(ca_cert: Path) -> str | None:
    """The issuer id of the data dir's CA, which rows from before issuers go to (revision 0017)."""
    try:
        return issuer_id(x509.load_pem_x509_certificate(ca_cert.read_bytes()))
    except (OSError, ValueError):
        return None


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    settings = get_settings()
    url = config.get_main_option("sqlalchemy.url") or settings.sqlalchemy_url
    config.attributes.setdefault("current_issuer", _current_issuer(settings.data_dir / "ca.pem"))
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
