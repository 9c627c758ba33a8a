"""domain proofs: an organisation's proof that it controls its website's domain (issue 18)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
# At the merge: "0014" (another branch adds it; until then this follows 0013 directly).
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A new, empty table: nothing else waits while it (and its index) is created.
    op.create_table(
        "domain_proofs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endorsement_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("challenge", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("verified_at", sa.DateTime(), nullable=True),
        sa.Column("held_at", sa.DateTime(), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(), nullable=True),
        sa.Column("next_check_at", sa.DateTime(), nullable=True),
        sa.Column("last_result", sa.String(length=200), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["endorsement_id"],
            ["endorsements.id"],
            name=op.f("fk_domain_proofs_endorsement_id_endorsements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domain_proofs")),
        sa.UniqueConstraint("endorsement_id", name=op.f("uq_domain_proofs_endorsement_id")),
    )
    op.create_index(op.f("ix_domain_proofs_next_check_at"), "domain_proofs", ["next_check_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_domain_proofs_next_check_at"), table_name="domain_proofs")
    op.drop_table("domain_proofs")
