import sqlalchemy as sa

from petition.schema import UTCDateTime, metadata

appeals = sa.Table(
    "appeals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(80), nullable=False, unique=True),
    # draft | open | paused | closed (petition.appeals.states.AppealStatus)
    sa.Column("status", sa.String(16), nullable=False),
    # pre: listed after an organiser approves; post: listed on confirmation
    sa.Column("moderation", sa.String(8), nullable=False),
    sa.Column("addressees", sa.Text, nullable=False, server_default=""),
    sa.Column("default_language", sa.String(8), nullable=False, server_default="en"),
    # When the appeal was launched, and when it stops taking endorsements (its deadline: the
    # first instant after the last day; petition.appeals.about reads both).
    sa.Column("opens_at", UTCDateTime, nullable=True),
    sa.Column("closes_at", UTCDateTime, nullable=True),
    # The organisations that launch it together: a JSON list of {"name", "website"}.
    sa.Column("initiators", sa.Text, nullable=False, server_default="[]"),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

appeal_texts = sa.Table(
    "appeal_texts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("appeal_id", sa.Integer, sa.ForeignKey("appeals.id"), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    # Editing a published text adds a version; old versions and hashes stay.
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("addressees", sa.Text, nullable=False, server_default=""),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("is_current", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("appeal_id", "language", "version", name="uq_appeal_texts_version"),
)
