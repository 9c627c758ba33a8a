import sqlalchemy as sa

from petition.schema import UTCDateTime, metadata

# One domain proof per endorsement (petition.identity.proofs): the registrable domain of its
# website, the challenge value the organisation publishes (a TXT record or a file), and what the
# worker's checks last found. `next_check_at` queues a check: set by "check now" and, for a
# proved domain, by the daily re-check; NULL when nothing is due.
domain_proofs = sa.Table(
    "domain_proofs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "endorsement_id",
        sa.Integer,
        sa.ForeignKey("endorsements.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    sa.Column("domain", sa.String(253), nullable=False),
    sa.Column("challenge", sa.String(64), nullable=False),
    # dns | https: how it was last proved (NULL until it was)
    sa.Column("method", sa.String(8), nullable=True),
    # pending | verified | lapsed | expired (petition.identity.proofs.ProofState)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # Until when the challenge may be proved; past it, an unproved one is expired.
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("verified_at", UTCDateTime, nullable=True),
    sa.Column("last_checked_at", UTCDateTime, nullable=True),
    sa.Column("next_check_at", UTCDateTime, nullable=True),
    # What the last check found, for the organisation's page (no personal data: the domain's answers).
    sa.Column("last_result", sa.String(200), nullable=False, server_default=""),
)
sa.Index("ix_domain_proofs_next_check_at", domain_proofs.c.next_check_at)
