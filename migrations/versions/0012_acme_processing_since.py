"""acme_challenges.processing_since: when a worker took the challenge to validate it

A challenge stays `processing` while one worker validates it off the request path. Should that worker die,
nothing finishes it; with the time it started, a later poll sees it has been processing longer than any
validation takes and validates it again (service.acme.authorizations). Rows from before this revision have none
and count as stale.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db.base

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("acme_challenges") as batch:
        batch.add_column(sa.Column("processing_since", service.db.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("acme_challenges") as batch:
        batch.drop_column("processing_since")
