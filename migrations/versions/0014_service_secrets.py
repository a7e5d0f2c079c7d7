"""service_secrets: keys the service keeps for itself, the same in every worker and replica

The first is `console-login`: the key the console's login form binds its CSRF token and cookie to (a cookie an
attacker plants, or makes up, yields no token). Made here, at random, so no two starts race to make it.

Revision ID: 0014
Revises: 0012
"""

import datetime as dt
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db.base

revision: str = "0014"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", service.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_secrets")),
    )
    now = dt.datetime.now(dt.UTC)
    op.bulk_insert(table, [{"name": "console-login", "value": secrets.token_hex(32), "created_at": now}])


def downgrade() -> None:
    op.drop_table("service_secrets")
