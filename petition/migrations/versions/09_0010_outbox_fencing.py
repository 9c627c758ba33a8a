"""outbox claims fenced by a token: a worker records a result only while the claim is still its own

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column without a default: on PostgreSQL a change of the catalogue only, no
    # rewrite of the table and no lock held beyond an instant. An email a worker of the release
    # before is sending meanwhile has no token: it is taken over once its lease runs out.
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))


def downgrade() -> None:
    # The release before claims by worker and time only; emails being sent are taken over after
    # their lease. Failed emails keep their context from this release on; the release before
    # leaves it, and the purge takes it with the endorsement.
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("claim_token")
