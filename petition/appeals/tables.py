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

# Deliveries of an appeal's dossiers to parliamentarians (petition.delivery sends them; the
# public side reads these two tables: petition.appeals.deliveries). One row per sending of one
# country's signed dossier: which dossier (its SHA-256, as /verify knows it), to how many offices,
# and how many organisations it held — named and anonymous — when it was sent. Recipients'
# addresses are in petition.delivery's own tables, never here.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("appeal_id", sa.Integer, sa.ForeignKey("appeals.id"), nullable=False, index=True),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("dossier_id", sa.Integer, nullable=False),
    sa.Column("pdf_sha256", sa.String(64), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("letter", sa.Text, nullable=False),
    # ep | pace | both: the bodies whose members or offices it went to
    sa.Column("bodies", sa.String(16), nullable=False),
    sa.Column("offices", sa.Integer, nullable=False),
    sa.Column("named_count", sa.Integer, nullable=False),
    sa.Column("anonymous_count", sa.Integer, nullable=False),
    sa.Column("organiser_id", sa.Integer, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# Answers from recipients, recorded by organisers and shown on the appeal page.
delivery_answers = sa.Table(
    "delivery_answers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "delivery_id", sa.Integer, sa.ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    # Who answered, as public: "Jane Doe MEP (Greens/EFA)", "PACE Migration Committee".
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("answered_on", sa.Date, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    # An optional link to the answer's document (https only).
    sa.Column("document_url", sa.String(500), nullable=False, server_default=""),
    sa.Column("organiser_id", sa.Integer, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
