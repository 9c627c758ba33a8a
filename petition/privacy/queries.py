"""What a contact can do with their own data: get a copy; and what is purged when.

Withdrawing and the purge of endorsements are transitions of the life cycle
(petition.endorsements.lifecycle); the purge here runs the latter with the rest of the cleaning.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import jinja2
import sqlalchemy as sa

from petition.abuse.limits import prune_rate_events
from petition.appeals.tables import appeals
from petition.audit.tables import audit_log
from petition.db import Database, Row
from petition.endorsements.lifecycle import BLANKED_ON_WITHDRAWAL, purge_stale
from petition.endorsements.states import EndorsementState
from petition.endorsements.tables import countersignatures, endorsement_versions, endorsements
from petition.endorsements.vocabulary import canonical_email
from petition.outbox.messages import Mailer, queued_subject
from petition.outbox.states import OutboxState
from petition.outbox.tables import outbox
from petition.privacy.emails import data_copy_context
from petition.schema import utcnow

S = EndorsementState
e = endorsements


async def endorsement_for_token(db: Database, *, endorsement_id: int, nonce: str) -> Row | None:
    return await db.fetch_one(
        sa.select(e, appeals.c.slug)
        .join(appeals, appeals.c.id == e.c.appeal_id)
        .where(e.c.id == endorsement_id, e.c.token_nonce == nonce)
    )


async def request_data_copy(db: Database, *, mailer: Mailer, email_canonical: str, language: str) -> bool:
    """Email a download link to the address, if any endorsement has it; True when one was queued.

    The email goes to the stored address, never to what was typed, so only its owner
    can open the link; and only to an address of that very mailbox: a row stored under an
    older canonical form (IDNA 2003 made "straße.de" "strasse.de") belongs to another one.
    """
    async with db.write():
        candidates = await db.fetch_all(e.select().where(e.c.email_canonical == email_canonical).order_by(e.c.id))
        row = next((r for r in candidates if canonical_email(r["contact_email"]) == email_canonical), None)
        if row is None:
            return False
        await mailer.queue(
            db,
            name="data_request",
            to=row["contact_email"],
            language=language,
            endorsement_id=row["id"],
            context=data_copy_context(mailer=mailer, nonce=row["token_nonce"], language=language),
        )
    mailer.notify()
    return True


def _utc(value: dt.datetime) -> dt.datetime:
    # Stored as naive UTC (petition.schema.UTCDateTime); some joined selects hand it back naive.
    return (value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value).astimezone(dt.UTC)


def _value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _utc(value).isoformat().replace("+00:00", "Z")
    return value


#: Internal columns that say nothing about the person and would only help forge links.
_NOT_EXPORTED = {"token_nonce"}


async def export_data(
    db: Database, *, env: jinja2.Environment, endorsement_id: int, nonce: str
) -> dict[str, Any] | None:
    """Everything stored about the endorsements made with this record's mailbox, and nothing else.

    The mailbox is the one the link was sent to: this record's stored address. Rows are found
    by their stored canonical form (this record's, and the current one of its address) and
    then kept only if their own address is that mailbox, so a row stored under an older
    canonical form that merged two mailboxes (IDNA 2003: "straße.de" = "strasse.de") never
    shows one organisation's record to the other.
    """
    row = await endorsement_for_token(db, endorsement_id=endorsement_id, nonce=nonce)
    if row is None:
        return None
    mailbox = canonical_email(row["contact_email"])
    found = await db.fetch_all(
        sa.select(e, appeals.c.slug.label("appeal_slug"))
        .join(appeals, appeals.c.id == e.c.appeal_id)
        .where(e.c.email_canonical.in_([row["email_canonical"], mailbox]))
        .order_by(e.c.id)
    )
    rows = [r for r in found if canonical_email(r["contact_email"]) == mailbox]
    ids = [r["id"] for r in rows]
    emails = await db.fetch_all(
        sa.select(
            outbox.c.endorsement_id,
            outbox.c.kind,
            outbox.c.to_addr,
            outbox.c.subject,
            outbox.c.context,
            outbox.c.language,
            outbox.c.state,
            outbox.c.attempts,
            outbox.c.created_at,
            outbox.c.sent_at,
        )
        .where(outbox.c.endorsement_id.in_(ids))
        .order_by(outbox.c.id)
    )
    events = await db.fetch_all(
        sa.select(audit_log.c.target_id, audit_log.c.action, audit_log.c.created_at)
        .where(audit_log.c.target_type == "endorsement", audit_log.c.target_id.in_(ids))
        .order_by(audit_log.c.id)
    )
    # Later submissions made with this mailbox that wait, unconfirmed, beside its records.
    waiting = await db.fetch_all(
        sa.select(
            endorsement_versions.c.endorsement_id,
            endorsement_versions.c.data,
            endorsement_versions.c.hold_reason,
            endorsement_versions.c.created_at,
        )
        .where(endorsement_versions.c.endorsement_id.in_(ids))
        .order_by(endorsement_versions.c.id)
    )
    second = {
        c["endorsement_id"]: c
        for c in await db.fetch_all(countersignatures.select().where(countersignatures.c.endorsement_id.in_(ids)))
    }
    items = []
    for r in rows:
        record = {name: _value(r[name]) for name in r.keys() if name not in _NOT_EXPORTED}
        record["state_history"] = [
            {"state": state, "at": _value(r[column])}
            for state, column in (
                ("submitted", "created_at"),
                ("confirmed", "confirmed_at"),
                ("moderated", "moderated_at"),
                ("listed", "listed_at"),
                ("withdrawn", "withdrawn_at"),
            )
            if r[column] is not None
        ]
        # Not what a queued email says in full: that holds its signed link, the subject tells it.
        record["emails"] = [
            {
                **{k: _value(m[k]) for k in m.keys() if k not in ("endorsement_id", "context")},
                "subject": queued_subject(env, m),
            }
            for m in emails
            if m["endorsement_id"] == r["id"]
        ]
        # Only since the record was made: on SQLite a purged record's number can come back as a
        # new record's, and the audit rows of the one gone are not this one's.
        record["events"] = [
            {"action": ev["action"], "at": _value(ev["created_at"])}
            for ev in events
            if ev["target_id"] == r["id"] and _utc(ev["created_at"]) >= _utc(r["created_at"])
        ]
        record["waiting_submissions"] = [
            {"submitted_at": _value(w["created_at"]), "hold_reason": w["hold_reason"], **json.loads(w["data"])}
            for w in waiting
            if w["endorsement_id"] == r["id"]
        ]
        if (c := second.get(r["id"])) is not None:
            # A second officer's countersignature (petition.identity.countersign): no address is kept.
            record["countersignature"] = {
                name: _value(c[name])
                for name in (
                    "invited_at",
                    "email_domain",
                    "officer_name",
                    "officer_role",
                    "countersigned_at",
                    "declined_at",
                )
            }
        items.append(record)
    return {
        "generated_at": _value(utcnow()),
        "endorsements": items,
        "note": "Rate-limit counters hold only keyed hashes of addresses and are kept at most one day.",
    }


@dataclass(frozen=True)
class PurgeResult:
    endorsements: int  # never confirmed
    emails: int
    rate_events: int
    withdrawn: int = 0
    submissions: int = 0  # later submissions for a known address, never confirmed


async def purge_unconfirmed(db: Database, *, retention_days: int, now: dt.datetime | None = None) -> PurgeResult:
    """Delete endorsements never confirmed within `retention_days` of their last change, and
    withdrawn ones `retention_days` after the withdrawal, with their emails (the life cycle's
    purge); later submissions never confirmed; delivered emails older than that; and expired
    rate-limit counters."""
    cutoff = (now or utcnow()) - dt.timedelta(days=retention_days)
    v = endorsement_versions
    async with db.write():
        # Withdrawn before withdrawals blanked anything: make the privacy page true for them too.
        await db.execute(
            e.update().where(e.c.state == S.WITHDRAWN.value, _holds_withdrawn_details()).values(**BLANKED_ON_WITHDRAWAL)
        )
        old_submissions = v.c.created_at < cutoff
        submissions = int(await db.fetch_val(sa.select(sa.func.count()).select_from(v).where(old_submissions)) or 0)
        if submissions:
            await db.execute(v.delete().where(old_submissions))
        purged = await purge_stale(db, cutoff=cutoff)
        # Delivered or given-up emails keep an address: no longer needed after the same time. A
        # failed email about an endorsement stays while the endorsement does (organisers may queue
        # it again); the endorsement's purge takes it.
        done = sa.or_(
            sa.and_(
                outbox.c.state == OutboxState.SENT.value,
                sa.func.coalesce(outbox.c.sent_at, outbox.c.created_at) < cutoff,
            ),
            sa.and_(
                outbox.c.state == OutboxState.FAILED.value,
                outbox.c.created_at < cutoff,
                outbox.c.endorsement_id.is_(None),
            ),
        )
        old = int(await db.fetch_val(sa.select(sa.func.count()).select_from(outbox).where(done)) or 0)
        if old:
            await db.execute(outbox.delete().where(done))
    pruned = await prune_rate_events(db)
    return PurgeResult(
        endorsements=purged.unconfirmed,
        emails=purged.emails + old,
        rate_events=pruned,
        withdrawn=purged.withdrawn,
        submissions=submissions,
    )


def _holds_withdrawn_details() -> sa.ColumnElement[bool]:
    return sa.or_(*(e.c[name] != "" for name in BLANKED_ON_WITHDRAWAL))
