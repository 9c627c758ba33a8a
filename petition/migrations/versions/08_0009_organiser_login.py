"""organiser login under attack: attempts reserved before the check, device cookies, two-step login

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("organisers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("totp_pending_secret", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("totp_enabled_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("login_alert_at", sa.DateTime(), nullable=True))
    op.create_table(
        "organiser_recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organiser_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organiser_id"],
            ["organisers.id"],
            ondelete="CASCADE",
            name=op.f("fk_organiser_recovery_codes_organiser_id_organisers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organiser_recovery_codes")),
        sa.UniqueConstraint("organiser_id", "code_hash", name="uq_organiser_recovery_codes_code"),
    )
    # Attempts now carry the device cookie they came with (NULL: an untrusted client). The rows
    # there are failures of the last 15 minutes and stay valid as untrusted ones.
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device", sa.String(length=64), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    enrolled = bind.execute(sa.text("SELECT count(*) FROM organisers WHERE totp_enabled_at IS NOT NULL")).scalar()
    if enrolled:
        raise RuntimeError(
            f"{enrolled} organisers log in with a second factor, which the release before this "
            "one does not know: it would let them in with the password alone. Reset their "
            "second factor (organiser area, Two-step login) before downgrading"
        )
    # Device rows would count against every client of the account in the release before.
    bind.execute(sa.text("DELETE FROM login_failures WHERE device IS NOT NULL"))
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_column("device")
    op.drop_table("organiser_recovery_codes")
    with op.batch_alter_table("organisers", schema=None) as batch_op:
        batch_op.drop_column("login_alert_at")
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enabled_at")
        batch_op.drop_column("totp_pending_secret")
        batch_op.drop_column("totp_secret")
        batch_op.drop_column("language")
