import sqlalchemy as sa

from petition.schema import UTCDateTime, metadata

#: One row per counted event (a form submission, a resend, a data request). The key
#: is an HMAC of the IP address, email address or domain with SECRET_KEY: the table
#: can count repeats across processes but names nobody. Pruned by `petition purge`.
rate_events = sa.Table(
    "rate_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("bucket", sa.String(24), nullable=False),
    sa.Column("key_hash", sa.String(32), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

sa.Index("ix_rate_events_lookup", rate_events.c.bucket, rate_events.c.key_hash, rate_events.c.created_at)
sa.Index("ix_rate_events_created", rate_events.c.created_at)
