import sqlalchemy as sa

from petition.schema import UTCDateTime, metadata

dossiers = sa.Table(
    "dossiers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("appeal_id", sa.Integer, sa.ForeignKey("appeals.id"), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    # queued | building | done | failed
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("progress", sa.Integer, nullable=False, server_default="0"),
    sa.Column("signatory_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("anonymous_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("pdf_sha256", sa.String(64), nullable=True),
    sa.Column("list_sha256", sa.String(64), nullable=True),
    sa.Column("file_path", sa.String(500), nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("organisers.id"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    # The worker building it, and when it last reported progress (a lease: a row
    # whose worker died is claimable again once this is old enough).
    sa.Column("claimed_by", sa.String(100), nullable=True),
    sa.Column("claimed_at", UTCDateTime, nullable=True),
    sa.Column("page_count", sa.Integer, nullable=True),
    # Issued PAdES B-B because the timestamp authority did not answer: the worker adds an
    # RFC 3161 document timestamp later, then clears this.
    sa.Column("timestamp_pending", sa.Boolean, nullable=False, server_default=sa.false()),
)

sa.Index("ix_dossiers_pdf_sha256", dossiers.c.pdf_sha256)
sa.Index("ix_dossiers_list_sha256", dossiers.c.list_sha256)
sa.Index("ix_dossiers_state_created", dossiers.c.state, dossiers.c.created_at)
