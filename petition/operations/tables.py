import sqlalchemy as sa

from petition.schema import UTCDateTime, metadata

#: When each running worker last went round its loop (petition.operations.heartbeats): /readyz and
#: /metrics tell a queue that nobody works from one that is merely long. A worker that stops cleanly
#: deletes its row; rows not beaten for a day are deleted by the others.
worker_heartbeats = sa.Table(
    "worker_heartbeats",
    metadata,
    # host:pid:random, as the worker names itself in the outbox's claimed_by
    sa.Column("worker_id", sa.String(80), primary_key=True),
    # "outbox worker" | "dossier worker"
    sa.Column("worker", sa.String(40), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("beat_at", UTCDateTime, nullable=False),
)
