"""seed the revocations counter, so increments are always a plain UPDATE (no insert race between replicas)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 20:35:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO counters (name, value) SELECT 'revocations', 0 "
        "WHERE NOT EXISTS (SELECT 1 FROM counters WHERE name = 'revocations')"
    )


def downgrade() -> None:
    pass  # the row is harmless, and may hold a real count by now
