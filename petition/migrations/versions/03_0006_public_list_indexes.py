"""indexes for the public lists: newest named, and named by country and name

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from petition.migrations.indexes import create_index, drop_index

revision: str = "0006"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_index("ix_endorsements_newest", "endorsements", ["appeal_id", "visibility", "listed_at", "id"])
    create_index(
        "ix_endorsements_by_country_name",
        "endorsements",
        ["appeal_id", "visibility", "country", "name_normalised", "id"],
    )


def downgrade() -> None:
    drop_index("ix_endorsements_by_country_name", "endorsements")
    drop_index("ix_endorsements_newest", "endorsements")
