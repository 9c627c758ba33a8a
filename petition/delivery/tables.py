"""Addressees, how countries without members are routed, the suppression list, and who each
delivery went to. Private: none of it is public (petition.appeals.tables holds what is)."""

import sqlalchemy as sa

from petition.schema import UTCDateTime, metadata

# One import of a body's member list (`petition addressees import`): where it came from and as
# of when. A new import of a body replaces its addressees; this row stays, for the record.
addressee_imports = sa.Table(
    "addressee_imports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # ep | pace
    sa.Column("body", sa.String(8), nullable=False),
    sa.Column("source", sa.String(300), nullable=False),
    # The date of the list itself (its source's), which the staleness warning counts from.
    sa.Column("source_date", sa.Date, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("imported_at", UTCDateTime, nullable=False),
)

# Members (and offices: a committee's secretariat) of a body. Public-office addresses, but
# private here all the same: never shown outside the organisers' area.
addressees = sa.Table(
    "addressees",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("import_id", sa.Integer, sa.ForeignKey("addressee_imports.id"), nullable=False),
    sa.Column("body", sa.String(8), nullable=False),
    # ISO 3166-1 alpha-2; "" for an office that represents no country (a committee's secretariat).
    sa.Column("country", sa.String(2), nullable=False, server_default=""),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("political_group", sa.String(100), nullable=False, server_default=""),
    # Committee codes, ";"-separated, each wrapped in ";" (";DROI;PETI;"): a LIKE finds one.
    sa.Column("committees", sa.String(500), nullable=False, server_default=""),
)
sa.Index("ix_addressees_body_country", addressees.c.body, addressees.c.country)

# Countries with no members of a body (Russia, Belarus and Ukraine have no MEPs; Russia left the
# Council of Europe): which committees of which body receive their dossier.
delivery_routes = sa.Table(
    "delivery_routes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("body", sa.String(8), nullable=False),
    sa.Column("committee", sa.String(20), nullable=False),
    sa.UniqueConstraint("country", "body", "committee", name="uq_delivery_routes"),
)

# Addresses that receive no delivery (an office asked not to, or mail to it bounces).
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email_canonical", sa.String(254), nullable=False, unique=True),
    sa.Column("reason", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# Who one delivery went to: a copy of the addressee as it was, and its email's outbox row.
delivery_recipients = sa.Table(
    "delivery_recipients",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
    sa.Column("body", sa.String(8), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("political_group", sa.String(100), nullable=False, server_default=""),
    sa.Column("committees", sa.String(500), nullable=False, server_default=""),
    # queued | sent | failed (from its outbox row, kept here once the outbox forgets it)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("outbox_id", sa.Integer, nullable=True),
    sa.Column("sent_at", UTCDateTime, nullable=True),
)
sa.Index("ix_delivery_recipients_delivery", delivery_recipients.c.delivery_id)
