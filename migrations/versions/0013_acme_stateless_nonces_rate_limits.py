"""ACME: nonces that cost no write until spent, and rate limits per account and per address

- server_secrets: secrets every worker and replica shares, made by the first that needs one (the key ACME nonces
  are authenticated with, service.acme.nonces).
- acme_nonces now holds the nonces that were spent, not those handed out: the rows of before (nonces handed out,
  in the old form no worker accepts any more) are deleted.
- acme_accounts.created_from, acme_orders.created_from: the client address each was made from, and the indexes
  the rate limits count with (service.acme.limits).

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db.base

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", service.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_secrets")),
    )
    op.execute("DELETE FROM acme_nonces")
    with op.batch_alter_table("acme_accounts") as batch:
        batch.add_column(sa.Column("created_from", sa.String(length=64), nullable=True))
        batch.create_index("ix_acme_accounts_created_from_created_at", ["created_from", "created_at"], unique=False)
    with op.batch_alter_table("acme_orders") as batch:
        batch.add_column(sa.Column("created_from", sa.String(length=64), nullable=True))
        batch.create_index("ix_acme_orders_account_id_created_at", ["account_id", "created_at"], unique=False)
        batch.create_index("ix_acme_orders_created_from_created_at", ["created_from", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("acme_orders") as batch:
        batch.drop_index("ix_acme_orders_created_from_created_at")
        batch.drop_index("ix_acme_orders_account_id_created_at")
        batch.drop_column("created_from")
    with op.batch_alter_table("acme_accounts") as batch:
        batch.drop_index("ix_acme_accounts_created_from_created_at")
        batch.drop_column("created_from")
    op.drop_table("server_secrets")
