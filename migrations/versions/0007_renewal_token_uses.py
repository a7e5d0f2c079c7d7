"""renewal token uses: the spent jti of each renewal token (issue 11)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db.base


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'renewal_token_uses',
        sa.Column('serial', sa.String(length=40), nullable=False),
        sa.Column('jti', sa.String(length=128), nullable=False),
        sa.Column('expires_at', service.db.base.UTCDateTime(), nullable=False),
        sa.Column('used_at', service.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('serial', 'jti', name=op.f('pk_renewal_token_uses')),
    )
    with op.batch_alter_table('renewal_token_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_renewal_token_uses_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('renewal_token_uses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_renewal_token_uses_expires_at'))
    op.drop_table('renewal_token_uses')
