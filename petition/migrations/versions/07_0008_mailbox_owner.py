"""only the mailbox owner speaks for an organisation: submissions beside a record, holds after
confirmation, mailbox identities in IDNA 2008, no raw addresses for failed logins

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _canonical_email(value: str) -> str:
    """`petition.endorsements.vocabulary.canonical_email` as of this revision (a migration must not
    change when that function does later)."""
    import re

    import idna

    local, _, domain = value.strip().rpartition("@")
    if not local:
        return value.strip().lower()
    domain = re.sub(r"[\s.]+$", "", domain)
    try:
        domain = idna.encode(domain, uts46=True, transitional=False).decode("ascii").rstrip(".")
    except UnicodeError:
        domain = "".join(ch.lower() if ch.isascii() else ch for ch in domain)
    local = local.lower()
    if "+" in local[1:]:
        local = local[0] + local[1:].split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local = local.replace(".", "").strip()
        domain = "gmail.com"
    return f"{local}@{domain}"


def _old_canonical_email(value: str) -> str:
    """The form before this revision, for the downgrade only: the release before finds its
    records under this spelling. It is IDNA 2003 through the standard library's codec, the
    very merging of ß/ss that 0008 undoes, on purpose: it must compute what that release did."""
    local, _, domain = value.strip().rpartition("@")
    if not local:
        return value.strip().lower()
    domain = domain.rstrip(".").lower()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    local = local.lower()
    if "+" in local[1:]:
        local = local[0] + local[1:].split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def _recanonicalise(bind: sa.engine.Connection, canonical_email: object) -> None:
    """Recompute every stored mailbox identity; refuse, naming the rows, if two would meet
    (one mailbox, one record per appeal: an operator decides which of them stays)."""
    rows = bind.execute(sa.text("SELECT id, appeal_id, contact_email, email_canonical FROM endorsements")).fetchall()
    new = {row_id: canonical_email(contact_email) for row_id, _appeal, contact_email, _stored in rows}  # type: ignore[operator]
    seen: dict[tuple[int, str], int] = {}
    for row_id, appeal_id, _contact, _stored in rows:
        other = seen.setdefault((appeal_id, new[row_id]), row_id)
        if other != row_id:
            raise RuntimeError(
                f"endorsements {other} and {row_id} would become one mailbox of appeal {appeal_id}: "
                "delete or correct one of them, then migrate again"
            )
    for row_id, _appeal, _contact, stored in rows:
        if new[row_id] != stored:
            bind.execute(
                sa.text("UPDATE endorsements SET email_canonical = :c WHERE id = :id"), {"c": new[row_id], "id": row_id}
            )


def upgrade() -> None:
    with op.batch_alter_table("endorsements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hold_reason", sa.String(32), nullable=True))
    op.create_table(
        "endorsement_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endorsement_id", sa.Integer(), nullable=False),
        sa.Column("token_nonce", sa.String(32), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("hold_reason", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["endorsement_id"], ["endorsements.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("endorsement_id", "token_nonce", name="uq_endorsement_versions_nonce"),
    )
    op.create_index("ix_endorsement_versions_created", "endorsement_versions", ["created_at"], unique=False)
    bind = op.get_bind()
    # Quarantined records of earlier releases were never emailed nor confirmed: they become
    # unconfirmed submissions (purged like any other), and `quarantined` now means "confirmed, held".
    bind.execute(
        sa.text("UPDATE endorsements SET state = 'pending', hold_reason = 'legacy' WHERE state = 'quarantined'")
    )
    # Mailbox identities: IDNA 2008 / UTS 46 keeps ß/ss and ς/σ apart (the old codec merged them).
    _recanonicalise(bind, _canonical_email)
    # Failed logins now keep a keyed hash of the client address; the rows hold raw addresses and
    # matter for 15 minutes at most.
    bind.execute(sa.text("DELETE FROM login_failures"))


def downgrade() -> None:
    bind = op.get_bind()
    waiting = bind.execute(sa.text("SELECT count(*) FROM endorsements WHERE state = 'quarantined'")).scalar()
    if waiting:
        raise RuntimeError(
            f"{waiting} confirmed endorsements are held for review: release or reject them "
            "before downgrading (the release before this one would treat them as unconfirmed)"
        )
    # Held back by a sender's limit, unconfirmed: the release before holds such ones silently.
    bind.execute(
        sa.text("UPDATE endorsements SET state = 'quarantined' WHERE state = 'pending' AND hold_reason IS NOT NULL")
    )
    # The identities that release computes, so it finds the records it wrote.
    _recanonicalise(bind, _old_canonical_email)
    op.drop_index("ix_endorsement_versions_created", table_name="endorsement_versions")
    op.drop_table("endorsement_versions")
    with op.batch_alter_table("endorsements", schema=None) as batch_op:
        batch_op.drop_column("hold_reason")
