import sqlalchemy as sa

from petition.schema import UTCDateTime, metadata

# One row per update an organiser sent: to whom (an appeal's opted-in organisations, of one
# country or all), what it said per language (JSON: {language: {"subject", "body"}}), and how
# many emails it queued. The emails themselves are outbox rows (kind `news`), one per organisation.
news_updates = sa.Table(
    "news_updates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("appeal_id", sa.Integer, sa.ForeignKey("appeals.id"), nullable=False, index=True),
    # NULL: every country
    sa.Column("country", sa.String(2), nullable=True),
    sa.Column("texts", sa.Text, nullable=False),
    sa.Column("recipients", sa.Integer, nullable=False),
    sa.Column("organiser_id", sa.Integer, sa.ForeignKey("organisers.id"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
