"""rows from before issuers (revision 0009) go to the CA that signed them all

Certificates and CRLs written before 0009 have no issuer_id. They were all signed by the one CA the data dir had
then, which is still its current CA (a rotation gives them to it before it retires). The database does not hold
that CA's certificate: `service.db.migrate.upgrade(current_issuer=...)` hands its issuer id over, and the alembic
command line reads it from the data dir (migrations/env.py). Until this revision `pocketca serve` did this at
every start (CertificateRepository.adopt).

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("certificates", "crls")


def upgrade() -> None:
    issuer = context.config.attributes.get("current_issuer")
    if issuer is None:
        bind = op.get_bind()
        left = sum(
            bind.execute(sa.text(f"SELECT count(*) FROM {t} WHERE issuer_id IS NULL")).scalar() or 0 for t in TABLES
        )
        if left:
            raise RuntimeError(
                f"{left} certificates or CRLs are from before issuers and need the CA that signed them:"
                " migrate with `pocketca serve` (or set POCKETCA_DATA_DIR to the data dir holding that CA)"
            )
        return
    for table in TABLES:
        op.execute(sa.text(f"UPDATE {table} SET issuer_id = :issuer WHERE issuer_id IS NULL").bindparams(issuer=issuer))


def downgrade() -> None:
    pass  # which rows had no issuer is not kept: they keep the one they were given
