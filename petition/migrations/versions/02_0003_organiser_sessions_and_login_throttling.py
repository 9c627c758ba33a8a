"""organiser sessions and login throttling

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from petition.migrations.indexes import create_index, drop_index

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("organisers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_version", sa.Integer(), server_default="0", nullable=False))
    create_index("ix_audit_log_action_created", "audit_log", ["action", "created_at"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.create_index("ix_login_failures_account", ["account_key", "created_at"], unique=False)
        batch_op.create_index("ix_login_failures_ip", ["ip", "created_at"], unique=False)
        batch_op.create_index("ix_login_failures_created", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_login_failures_created")
        batch_op.drop_index("ix_login_failures_ip")
        batch_op.drop_index("ix_login_failures_account")
    op.drop_table("login_failures")
    drop_index("ix_audit_log_action_created", "audit_log")
    with op.batch_alter_table("organisers", schema=None) as batch_op:
        batch_op.drop_column("session_version")
