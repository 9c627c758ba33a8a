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
    # The language of the organiser area at the last login: emails to the organiser use it.
    sa.Column("language", sa.String(8), nullable=True),
    # Two-step login (TOTP, petition.organisers.totp). On when `totp_enabled_at` is set;
    # `totp_pending_secret` is the secret shown during enrolment until a code proves it;
    # `totp_last_step` is the last time-step whose code was used, so no code is used twice.
    sa.Column("totp_secret", sa.String(64), nullable=True),
    sa.Column("totp_pending_secret", sa.String(64), nullable=True),
    sa.Column("totp_enabled_at", UTCDateTime, nullable=True),
    sa.Column("totp_last_step", sa.BigInteger, nullable=True),
    # When the organiser was last emailed that their account is being guessed (once a window).
    sa.Column("login_alert_at", UTCDateTime, nullable=True),
)

# One-time recovery codes of the second factor: a SHA-256 of each (they are random and long,
# so a slow hash adds nothing), marked when used.
recovery_codes = sa.Table(
    "organiser_recovery_codes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("organiser_id", sa.Integer, sa.ForeignKey("organisers.id", ondelete="CASCADE"), nullable=False),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("organiser_id", "code_hash", name="uq_organiser_recovery_codes_code"),
)

# Login attempts, for throttling per account, per device and per address across web processes
# (petition.organisers.throttle). A row is written *before* the password or code is checked,
# deleted when it was right, and kept as a failure when it was not. `account_key` is a keyed
# hash of the submitted address (known or not), `ip` one of the client's address and `device`
# one of the device cookie's nonce (NULL: a client without a device cookie of that account),
# never the values themselves; rows older than the throttling window are deleted as new ones come.
login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_key", sa.String(64), nullable=False),
    sa.Column("ip", sa.String(64), nullable=False),
    sa.Column("device", sa.String(64), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

sa.Index("ix_login_failures_account", login_failures.c.account_key, login_failures.c.created_at)
sa.Index("ix_login_failures_ip", login_failures.c.ip, login_failures.c.created_at)
sa.Index("ix_login_failures_created", login_failures.c.created_at)
