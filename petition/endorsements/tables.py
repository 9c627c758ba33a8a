import sqlalchemy as sa

from petition.schema import UTCDateTime, metadata

endorsements = sa.Table(
    "endorsements",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("appeal_id", sa.Integer, sa.ForeignKey("appeals.id"), nullable=False),
    sa.Column("organisation_name", sa.String(200), nullable=False),
    # casefolded, whitespace and punctuation folded: duplicate hints
    sa.Column("name_normalised", sa.String(200), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("city", sa.String(100), nullable=False, server_default=""),
    sa.Column("organisation_type", sa.String(32), nullable=False),
    sa.Column("website", sa.String(300), nullable=False, server_default=""),
    sa.Column("contact_name", sa.String(150), nullable=False),
    sa.Column("contact_role", sa.String(150), nullable=False, server_default=""),
    # private: never public, never logged
    sa.Column("contact_email", sa.String(254), nullable=False),
    sa.Column("email_canonical", sa.String(254), nullable=False),
    sa.Column("authorised", sa.Boolean, nullable=False),
    sa.Column("consent_version", sa.String(32), nullable=False),
    sa.Column("visibility", sa.String(16), nullable=False),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("text_language", sa.String(8), nullable=False),
    sa.Column("text_hash", sa.String(64), nullable=False),
    # pending | confirmed | approved | rejected | withdrawn | quarantined
    sa.Column("state", sa.String(16), nullable=False),
    # Binds signed links to this incarnation of the record.
    sa.Column("token_nonce", sa.String(32), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("confirmed_at", UTCDateTime, nullable=True),
    sa.Column("moderated_at", UTCDateTime, nullable=True),
    sa.Column("withdrawn_at", UTCDateTime, nullable=True),
    # When it entered a publicly listed state: the public "endorsed" date.
    sa.Column("listed_at", UTCDateTime, nullable=True),
    # Set when an anti-abuse limit held the submission back (a HoldReason): confirming it then
    # leads to the organisers' queue, not to the public list.
    sa.Column("hold_reason", sa.String(32), nullable=True),
    # News about the appeal (petition.news): the version of the optional "send us news" consent
    # the contact ticked and when (NULL: not asked for), and when its unsubscribe link was used.
    sa.Column("news_consent_version", sa.String(32), nullable=True),
    sa.Column("news_consented_at", UTCDateTime, nullable=True),
    sa.Column("news_unsubscribed_at", UTCDateTime, nullable=True),
    # The EU Transparency Register number the organisation gave (optional, as given: no lookup).
    sa.Column("transparency_register", sa.String(16), nullable=True),
    sa.UniqueConstraint("appeal_id", "email_canonical", name="uq_endorsements_appeal_email"),
)

sa.Index(
    "ix_endorsements_public",
    endorsements.c.appeal_id,
    endorsements.c.state,
    endorsements.c.country,
    endorsements.c.visibility,
)
sa.Index("ix_endorsements_listed", endorsements.c.appeal_id, endorsements.c.listed_at)
sa.Index("ix_endorsements_name", endorsements.c.appeal_id, endorsements.c.name_normalised)
sa.Index("ix_endorsements_state_created", endorsements.c.state, endorsements.c.created_at)
# The public side (petition.publish): named organisations newest first (the appeal page,
# the JSON API) and by country and name (the signatory list), read straight off an index.
sa.Index(
    "ix_endorsements_newest",
    endorsements.c.appeal_id,
    endorsements.c.visibility,
    endorsements.c.listed_at,
    endorsements.c.id,
)
sa.Index(
    "ix_endorsements_by_country_name",
    endorsements.c.appeal_id,
    endorsements.c.visibility,
    endorsements.c.country,
    endorsements.c.name_normalised,
    endorsements.c.id,
)

# A later submission for a mailbox that already has a record the submission must not change
# (pending, withdrawn, rejected or held): it waits here with a nonce and an email of its own,
# and only pressing Confirm on that email's link applies it to the record. So whatever a link
# confirms is exactly what its email showed, and nobody but the mailbox owner decides.
endorsement_versions = sa.Table(
    "endorsement_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("endorsement_id", sa.Integer, sa.ForeignKey("endorsements.id", ondelete="CASCADE"), nullable=False),
    sa.Column("token_nonce", sa.String(32), nullable=False),
    # The submitted fields (as endorsements columns), JSON: what its email shows and Confirm applies.
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("hold_reason", sa.String(32), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("endorsement_id", "token_nonce", name="uq_endorsement_versions_nonce"),
)
sa.Index("ix_endorsement_versions_created", endorsement_versions.c.created_at)

# The public log (petition.transparency) is fed from here: each change of what the public list
# says of an endorsement — listed, its public record changed, taken off — is noted as a leaf in
# `public_record_events`, in the transaction of the change (petition.endorsements.public_record),
# and the log's worker appends the leaves in order. `public_record_heads` remembers, per
# endorsement, the public id of its current (or last) entry — one entry is one listing — and
# what the log last said of it. No foreign key; the purge deletes a purged record's head (the
# log keeps its entries, and a reused id must not inherit them).
public_record_heads = sa.Table(
    "public_record_heads",
    metadata,
    sa.Column("endorsement_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.String(32), nullable=False, unique=True),
    sa.Column("appeal", sa.String(80), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("visibility", sa.String(16), nullable=False),
    sa.Column("listed", sa.Boolean, nullable=False),
    # SHA-256 of the public record last logged as listed: a change of it is a new `listed` entry.
    sa.Column("record_hash", sa.String(64), nullable=False),
    # Hides an anonymous entry's record in its commitment (shown only to the organisation).
    sa.Column("salt", sa.String(32), nullable=False),
)
public_record_events = sa.Table(
    "public_record_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("entry_id", sa.String(32), nullable=False),
    # The log leaf, exactly: canonical JSON.
    sa.Column("leaf", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)

# One domain proof per endorsement (petition.identity uses it; it is defined here so that the
# purge deletes it with its endorsement: SQLite enforces no foreign keys). For each proof: the
# registrable domain of its website, the challenge value the organisation publishes (a TXT
# record or a file), and what the worker's checks last found. `next_check_at` queues a check:
# set by "check now" and, for a proved domain, by the daily re-check; NULL when nothing is due.
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
    # The last check that found the value: a proof whose checks only fail to get an answer
    # lapses once this is older than petition.identity.proofs.UNANSWERED_GRACE.
    sa.Column("held_at", UTCDateTime, nullable=True),
    sa.Column("last_checked_at", UTCDateTime, nullable=True),
    sa.Column("next_check_at", UTCDateTime, nullable=True),
    # What the last check found, for the organisation's page (no personal data: the domain's answers).
    sa.Column("last_result", sa.String(200), nullable=False, server_default=""),
)
sa.Index("ix_domain_proofs_next_check_at", domain_proofs.c.next_check_at)

# A second officer's countersignature of a named organisation's endorsement (petition.identity.
# countersign): the contact invites another person of the organisation by their own address,
# and that person confirms on a page of their own (GET shows, only POST records). One row per
# endorsement; a new invitation replaces the last (a new `nonce`: the old link stops working).
# No address is kept: the invitation email carries it through the outbox; only its registrable
# domain stays, as a signal for the organisers. The mark is shown while the public record is
# what was countersigned (`record_hash`, as petition.endorsements.public_record hashes it).
countersignatures = sa.Table(
    "countersignatures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "endorsement_id",
        sa.Integer,
        sa.ForeignKey("endorsements.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    # Binds the invitation's link to this invitation.
    sa.Column("nonce", sa.String(32), nullable=False),
    # The registrable domain of the invited address (private: for the organisers only).
    sa.Column("email_domain", sa.String(253), nullable=False),
    sa.Column("invited_at", UTCDateTime, nullable=False),
    # Private, as the contact's own: given by the officer who countersigns.
    sa.Column("officer_name", sa.String(150), nullable=True),
    sa.Column("officer_role", sa.String(150), nullable=True),
    sa.Column("countersigned_at", UTCDateTime, nullable=True),
    # The public record (country and named fields) the officer saw and countersigned.
    sa.Column("record_hash", sa.String(64), nullable=True),
    # The invited person said this is not their organisation's doing: the organisers see it.
    sa.Column("declined_at", UTCDateTime, nullable=True),
)
