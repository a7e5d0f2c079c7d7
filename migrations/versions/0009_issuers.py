"""issuers: which CA signed each certificate and each CRL

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: a row from before issuers; `pocketca serve` assigns those to the CA in the data dir (bootstrap)
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("issuer_id", sa.String(length=16), nullable=True))
        batch_op.create_index("ix_certificates_issuer_status", ["issuer_id", "status"], unique=False)
    with op.batch_alter_table("crls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("issuer_id", sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f("ix_crls_issuer_id"), ["issuer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("crls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crls_issuer_id"))
        batch_op.drop_column("issuer_id")
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index("ix_certificates_issuer_status")
        batch_op.drop_column("issuer_id")
