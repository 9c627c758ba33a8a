"""trusted time: dossiers waiting for a timestamp, and each checkpoint's RFC 3161 token

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable or with a constant default: PostgreSQL adds both without rewriting the tables.
    with op.batch_alter_table("dossiers") as batch:
        batch.add_column(sa.Column("timestamp_pending", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("log_checkpoints") as batch:
        batch.add_column(sa.Column("timestamp_token", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("log_checkpoints") as batch:
        batch.drop_column("timestamp_token")
    with op.batch_alter_table("dossiers") as batch:
        batch.drop_column("timestamp_pending")
