"""drop the indexes no query uses: certificates.fingerprint_sha256, audit_events.serial and .token_id

Each was one more B-tree to write on every issuance (the two on random hex keys a page each) and none is read:
certificates are found by serial, listed by status / cn / issuer, and the audit log is paged by id only.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_certificates_fingerprint_sha256", table_name="certificates")
    op.drop_index("ix_audit_events_serial", table_name="audit_events")
    op.drop_index("ix_audit_events_token_id", table_name="audit_events")


def downgrade() -> None:
    op.create_index("ix_audit_events_token_id", "audit_events", ["token_id"], unique=False)
    op.create_index("ix_audit_events_serial", "audit_events", ["serial"], unique=False)
    op.create_index("ix_certificates_fingerprint_sha256", "certificates", ["fingerprint_sha256"], unique=False)
