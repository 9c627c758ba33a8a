import sqlalchemy as sa

from petition.schema import UTCDateTime, metadata

# The log itself: its leaves in order (index from 0), every complete node of its Merkle tree
# (level 0: the leaf hashes; a node at level l covers 2^l leaves), and each signed checkpoint.
# Only the log's worker writes them, one append at a time (petition.transparency.store).
log_leaves = sa.Table(
    "log_leaves",
    metadata,
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.String(32), nullable=False, index=True),
    sa.Column("leaf", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
log_nodes = sa.Table(
    "log_nodes",
    metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
)
log_checkpoints = sa.Table(
    "log_checkpoints",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
    # The signed note, as served at /log/checkpoint, and the verifier key that signed it.
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # The RFC 3161 timestamp token (DER) over SHA-256 of `note`, when TIMESTAMP_URL is set;
    # added after the checkpoint is published (the authority is asked outside the append).
    sa.Column("timestamp_token", sa.LargeBinary, nullable=True),
)

# The log's signing key when LOG_SIGNING_KEY is not set: generated once, shared by every worker
# (petition.transparency.keys).
log_keys = sa.Table(
    "log_keys",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("skey", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
