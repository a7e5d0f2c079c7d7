"""listing indexes that end in id, so newest-first pages stop after n rows (bench/list_certs.py)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 20:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index("ix_certificates_status_not_after")
        batch_op.create_index("ix_certificates_cn_status", ["cn", "status"], unique=False)
        batch_op.create_index("ix_certificates_status_id_not_after", ["status", "id", "not_after"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index("ix_certificates_status_id_not_after")
        batch_op.drop_index("ix_certificates_cn_status")
        batch_op.create_index("ix_certificates_status_not_after", ["status", "not_after"], unique=False)
