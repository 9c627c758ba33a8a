import sqlalchemy as sa

from petition.schema import UTCDateTime, metadata

organisers = sa.Table(
    "organisers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    # admin | moderator
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_login_at", UTCDateTime, nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organiser_id", sa.Integer, sa.ForeignKey("organisers.id"), nullable=True),
    # e.g. login, approve, reject, edit, export, dossier.build; never raw emails or tokens
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("target_type", sa.String(40), nullable=True),
    sa.Column("target_id", sa.Integer, nullable=True),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

sa.Index("ix_audit_log_created", audit_log.c.created_at)
