"""countersignatures: a second officer confirms an organisation's endorsement (issue 18)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A new, empty table: nothing else waits while it is created.
    op.create_table(
        "countersignatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endorsement_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("email_domain", sa.String(length=253), nullable=False),
        sa.Column("invited_at", sa.DateTime(), nullable=False),
        sa.Column("officer_name", sa.String(length=150), nullable=True),
        sa.Column("officer_role", sa.String(length=150), nullable=True),
        sa.Column("countersigned_at", sa.DateTime(), nullable=True),
        sa.Column("record_hash", sa.String(length=64), nullable=True),
        sa.Column("declined_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["endorsement_id"],
            ["endorsements.id"],
            name=op.f("fk_countersignatures_endorsement_id_endorsements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_countersignatures")),
        sa.UniqueConstraint("endorsement_id", name=op.f("uq_countersignatures_endorsement_id")),
    )


def downgrade() -> None:
    op.drop_table("countersignatures")
