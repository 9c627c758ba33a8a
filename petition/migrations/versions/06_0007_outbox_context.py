"""emails rendered by the worker: the outbox keeps what an email says, not its text

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("context", sa.Text(), nullable=True))


def downgrade() -> None:
    # The release before this one sends the stored subject and bodies, which are empty for an
    # email still waiting to be rendered: it would send them blank and lose the signed link.
    waiting = (
        op.get_bind()
        .execute(sa.text("SELECT count(*) FROM outbox WHERE context IS NOT NULL AND state IN ('queued', 'sending')"))
        .scalar()
    )
    if waiting:
        raise RuntimeError(
            f"{waiting} queued emails are rendered only by this release's workers: "
            "let `petition worker` send them (or purge them) before downgrading"
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("context")
