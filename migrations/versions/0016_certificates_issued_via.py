"""certificates.issued_via: the way a certificate came in, next to who asked for it (issued_by)

`issued_by` names the caller as the audit log does (`token:<id>`, `cert:<serial>`, `acme:<account>`,
`local:<command>`); `issued_via` says how: `token`, `enrollment`, `renewal`, `acme`, `console` or `local`, so a
certificate's JSON and console page can say it in a person's words. Rows from before this revision get what their
`issued_by` tells: an enrollment token is one bound to a CN; the console cannot be told from the API then (`token`).

Revision ID: 0016
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("issued_via", sa.String(length=16), nullable=True))
    op.execute(
        "UPDATE certificates SET issued_via = CASE"
        " WHEN issued_by LIKE 'acme:%' THEN 'acme'"
        " WHEN issued_by LIKE 'cert:%' THEN 'renewal'"
        " WHEN issued_by LIKE 'local:%' THEN 'local'"
        " WHEN issued_by LIKE 'token:%' AND EXISTS (SELECT 1 FROM tokens"
        " WHERE 'token:' || tokens.id = certificates.issued_by AND tokens.cn IS NOT NULL) THEN 'enrollment'"
        " WHEN issued_by LIKE 'token:%' THEN 'token'"
        " END"
    )


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("issued_via")
