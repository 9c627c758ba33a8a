"""the EU Transparency Register number an organisation may give (issue 18)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable without a default: no table rewrite; existing endorsements gave none.
    with op.batch_alter_table("endorsements") as batch:
        batch.add_column(sa.Column("transparency_register", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("endorsements") as batch:
        batch.drop_column("transparency_register")
