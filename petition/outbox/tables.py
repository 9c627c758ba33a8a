import sqlalchemy as sa

from petition.outbox.states import OutboxState
from petition.schema import UTCDateTime, metadata

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("endorsement_id", sa.Integer, sa.ForeignKey("endorsements.id", ondelete="SET NULL"), nullable=True),
    sa.Column("to_addr", sa.String(254), nullable=False),
    # What the email says (JSON: the template's values), rendered by the worker that sends it,
    # so a request never pays for rendering templates; its links are signed then too (see
    # outbox.messages.signed_link). Bodies stay empty (rows queued before migration 0007 hold
    # them rendered, signed links included); both are blanked once the message is sent.
    sa.Column("context", sa.Text, nullable=True),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("body_text", sa.Text, nullable=False),
    sa.Column("body_html", sa.Text, nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    # Stable across retries, so a relay that got it twice can tell.
    sa.Column("message_id", sa.String(200), nullable=False, unique=True),
    # queued | sending | sent | failed (petition.outbox.states.OutboxState)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("claimed_at", UTCDateTime, nullable=True),
    sa.Column("claimed_by", sa.String(80), nullable=True),
    # Fences a claim (set when claimed, cleared with the result): a worker renews the lease and
    # records a result only while the row still holds its token (outbox.queries.claim_next).
    sa.Column("claim_token", sa.String(32), nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
)

sa.Index("ix_outbox_due", outbox.c.state, outbox.c.next_attempt_at)

#: What every email's row starts with, whichever statement inserts it (`messages.outbox_values`,
#: and the grouped intake's SQL in `endorsements.intake`): queued, never tried, its bodies empty
#: until the worker renders them from `context`.
QUEUED_DEFAULTS: dict[str, str | int] = {
    "subject": "",
    "body_text": "",
    "body_html": "",
    "state": OutboxState.QUEUED.value,
    "attempts": 0,
}
