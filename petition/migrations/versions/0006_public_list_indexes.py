"""indexes for the public lists: newest named, and named by country and name

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("endorsements", schema=None) as batch_op:
        batch_op.create_index("ix_endorsements_newest", ["appeal_id", "visibility", "listed_at", "id"], unique=False)
        batch_op.create_index(
            "ix_endorsements_by_country_name",
            ["appeal_id", "visibility", "country", "name_normalised", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("endorsements", schema=None) as batch_op:
        batch_op.drop_index("ix_endorsements_by_country_name")
        batch_op.drop_index("ix_endorsements_newest")
