"""appeal initiators: the organisations that launch an appeal together (with opens_at, its start,
and closes_at, its deadline, which were there already)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A JSON list of {"name", "website"}; existing appeals get none. A column with a constant
    # default: no table rewrite on PostgreSQL, a plain ADD COLUMN on SQLite.
    op.add_column("appeals", sa.Column("initiators", sa.Text(), server_default="[]", nullable=False))


def downgrade() -> None:
    # SQLite 3.35 and later drop a column in place (no table copy under the foreign keys).
    op.drop_column("appeals", "initiators")
