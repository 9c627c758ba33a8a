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
    # Bumped to end every session of an organiser at once (logout, password change,
    # deactivation): sessions are signed cookies, so this is the server's one handle.
    sa.Column("session_version", sa.Integer, nullable=False, server_default="0"),
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

sa.Index("ix_audit_log_action_created", audit_log.c.action, audit_log.c.created_at)

# Failed logins, for throttling per account and per address across web processes.
# `account_key` is a keyed hash of the submitted address (known or not) and `ip` one of the
# client's address, never the addresses themselves; rows older than the throttling window
# are deleted as new ones come.
login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_key", sa.String(64), nullable=False),
    sa.Column("ip", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

sa.Index("ix_login_failures_account", login_failures.c.account_key, login_failures.c.created_at)
sa.Index("ix_login_failures_ip", login_failures.c.ip, login_failures.c.created_at)
sa.Index("ix_login_failures_created", login_failures.c.created_at)
