"""delivery to parliamentarians: member lists, routes, suppressions, deliveries, answers (issue 19)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # New, empty tables only: nothing else waits while they are created.
    op.create_table(
        "addressee_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("source_date", sa.Date(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addressee_imports")),
    )
    op.create_table(
        "addressees",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(length=8), nullable=False),
        sa.Column("country", sa.String(length=2), server_default="", nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("political_group", sa.String(length=100), server_default="", nullable=False),
        sa.Column("committees", sa.String(length=500), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"], ["addressee_imports.id"], name=op.f("fk_addressees_import_id_addressee_imports")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addressees")),
    )
    op.create_index("ix_addressees_body_country", "addressees", ["body", "country"], unique=False)
    op.create_table(
        "delivery_routes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("body", sa.String(length=8), nullable=False),
        sa.Column("committee", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_routes")),
        sa.UniqueConstraint("country", "body", "committee", name="uq_delivery_routes"),
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_canonical", sa.String(length=254), nullable=False),
        sa.Column("reason", sa.String(length=200), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("email_canonical", name=op.f("uq_suppressions_email_canonical")),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("dossier_id", sa.Integer(), nullable=False),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("letter", sa.Text(), nullable=False),
        sa.Column("bodies", sa.String(length=16), nullable=False),
        sa.Column("offices", sa.Integer(), nullable=False),
        sa.Column("named_count", sa.Integer(), nullable=False),
        sa.Column("anonymous_count", sa.Integer(), nullable=False),
        sa.Column("organiser_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], name=op.f("fk_deliveries_appeal_id_appeals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    op.create_index(op.f("ix_deliveries_appeal_id"), "deliveries", ["appeal_id"], unique=False)
    op.create_table(
        "delivery_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("answered_on", sa.Date(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("document_url", sa.String(length=500), server_default="", nullable=False),
        sa.Column("organiser_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_answers_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_answers")),
    )
    op.create_index(op.f("ix_delivery_answers_delivery_id"), "delivery_answers", ["delivery_id"], unique=False)
    op.create_table(
        "delivery_recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("political_group", sa.String(length=100), server_default="", nullable=False),
        sa.Column("committees", sa.String(length=500), server_default="", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_recipients_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_recipients")),
    )
    op.create_index("ix_delivery_recipients_delivery", "delivery_recipients", ["delivery_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_delivery_recipients_delivery", table_name="delivery_recipients")
    op.drop_table("delivery_recipients")
    op.drop_index(op.f("ix_delivery_answers_delivery_id"), table_name="delivery_answers")
    op.drop_table("delivery_answers")
    op.drop_index(op.f("ix_deliveries_appeal_id"), table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_table("suppressions")
    op.drop_table("delivery_routes")
    op.drop_index("ix_addressees_body_country", table_name="addressees")
    op.drop_table("addressees")
    op.drop_table("addressee_imports")
