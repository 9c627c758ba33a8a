"""Dossier build jobs: a lease (claimed_by, claimed_at) and the page count.

Revision ID: 0004
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from petition.migrations.indexes import create_index, drop_index

revision = "0004"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("page_count", sa.Integer(), nullable=True))
    create_index("ix_dossiers_state_created", "dossiers", ["state", "created_at"])


def downgrade() -> None:
    drop_index("ix_dossiers_state_created", "dossiers")
    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.drop_column("page_count")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claimed_by")
