import sqlalchemy as sa

from petition.schema import UTCDateTime, metadata

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # NULL: not an organiser (the contact, the command line, the housekeeping worker)
    sa.Column("organiser_id", sa.Integer, sa.ForeignKey("organisers.id"), nullable=True),
    # an `AuditAction` value (petition.audit.actions); never raw emails or tokens
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("target_type", sa.String(40), nullable=True),
    sa.Column("target_id", sa.Integer, nullable=True),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

sa.Index("ix_audit_log_created", audit_log.c.created_at)

sa.Index("ix_audit_log_action_created", audit_log.c.action, audit_log.c.created_at)
