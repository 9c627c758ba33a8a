"""news for endorsers: the optional news consent on endorsements, and the updates organisers send (issue 19)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns without defaults: no table rewrite, existing endorsements asked for no news.
    with op.batch_alter_table("endorsements") as batch:
        batch.add_column(sa.Column("news_consent_version", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("news_consented_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("news_unsubscribed_at", sa.DateTime(), nullable=True))
    op.create_table(
        "news_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("texts", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("organiser_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], name=op.f("fk_news_updates_appeal_id_appeals")),
        sa.ForeignKeyConstraint(
            ["organiser_id"], ["organisers.id"], name=op.f("fk_news_updates_organiser_id_organisers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_news_updates")),
    )
    op.create_index(op.f("ix_news_updates_appeal_id"), "news_updates", ["appeal_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_news_updates_appeal_id"), table_name="news_updates")
    op.drop_table("news_updates")
    with op.batch_alter_table("endorsements") as batch:
        batch.drop_column("news_unsubscribed_at")
        batch.drop_column("news_consented_at")
        batch.drop_column("news_consent_version")
