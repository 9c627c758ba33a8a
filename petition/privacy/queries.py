"""What a contact can do with their own data: withdraw, get a copy; and what is purged when."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

import jinja2
import sqlalchemy as sa

from petition.abuse.limits import prune_rate_events
from petition.appeals.tables import appeals
from petition.db import Database, Row
from petition.endorsements.states import EndorsementState, can_transition
from petition.endorsements.tables import endorsements
from petition.organisers.tables import audit_log
from petition.outbox.messages import Mailer, queued_subject, signed_link
from petition.outbox.states import OutboxState
from petition.outbox.tables import outbox
from petition.schema import utcnow
from petition.tokens import Purpose

S = EndorsementState
e = endorsements


class WithdrawOutcome(enum.StrEnum):
    WITHDRAWN = "withdrawn"
    ALREADY = "already"  # withdrawn before: a second POST changes nothing
    GONE = "gone"  # no such record, or it cannot be withdrawn (rejected, held)


async def endorsement_for_token(db: Database, *, endorsement_id: int, nonce: str) -> Row | None:
    return await db.fetch_one(
        sa.select(e, appeals.c.slug).join(appeals, appeals.c.id == e.c.appeal_id)
        .where(e.c.id == endorsement_id, e.c.token_nonce == nonce))


async def withdraw_endorsement(db: Database, *, endorsement_id: int, nonce: str) -> WithdrawOutcome:
    """Takes the endorsement out of lists, counts, open data and future dossiers, at once.

    Those all read only listed states; this makes the record `withdrawn` and clears
    its public date in the same statement.
    """
    now = utcnow()
    async with db.write():
        row = await db.fetch_one(e.select().where(e.c.id == endorsement_id, e.c.token_nonce == nonce))
        if row is None:
            return WithdrawOutcome.GONE
        if row["state"] == S.WITHDRAWN:
            return WithdrawOutcome.ALREADY
        if not can_transition(row["state"], S.WITHDRAWN):
            return WithdrawOutcome.GONE
        await db.execute(
            e.update().where(e.c.id == endorsement_id, e.c.state == row["state"])
            .values(state=S.WITHDRAWN.value, withdrawn_at=now, listed_at=None, updated_at=now))
        # Unsent emails about it (a confirmation still queued) are no longer wanted.
        await db.execute(outbox.delete().where(outbox.c.endorsement_id == endorsement_id,
                                               outbox.c.state == OutboxState.QUEUED.value))
        await db.execute(audit_log.insert().values(organiser_id=None, action="withdraw",
                                                   target_type="endorsement", target_id=endorsement_id,
                                                   detail="by the contact", created_at=now))
    return WithdrawOutcome.WITHDRAWN


async def request_data_copy(db: Database, *, mailer: Mailer, email_canonical: str, language: str) -> bool:
    """Email a download link to the address, if any endorsement has it; True when one was queued.

    The email goes to the stored address, never to what was typed, so only its owner
    can open the link.
    """
    async with db.write():
        row = await db.fetch_one(
            e.select().where(e.c.email_canonical == email_canonical).order_by(e.c.id).limit(1))
        if row is None:
            return False
        await mailer.queue(
            db, name="data_request", to=row["contact_email"], language=language, endorsement_id=row["id"],
            context={"download_url": signed_link(Purpose.DATA_REQUEST, f"/privacy/data/{{token}}?lang={language}",
                                                 nonce=row["token_nonce"]),
                     "valid_days": max(1, mailer.settings.confirm_max_age // 86400)},
        )
    mailer.notify()
    return True


def _value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        # Stored as naive UTC (petition.schema.UTCDateTime); some joined selects hand it back naive.
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value


#: Internal columns that say nothing about the person and would only help forge links.
_NOT_EXPORTED = {"token_nonce"}


async def export_data(db: Database, *, env: jinja2.Environment, endorsement_id: int,
                      nonce: str) -> dict[str, Any] | None:
    """Everything stored about the endorsements made with this record's email address."""
    row = await endorsement_for_token(db, endorsement_id=endorsement_id, nonce=nonce)
    if row is None:
        return None
    rows = await db.fetch_all(
        sa.select(e, appeals.c.slug.label("appeal_slug")).join(appeals, appeals.c.id == e.c.appeal_id)
        .where(e.c.email_canonical == row["email_canonical"]).order_by(e.c.id))
    ids = [r["id"] for r in rows]
    emails = await db.fetch_all(
        sa.select(outbox.c.endorsement_id, outbox.c.kind, outbox.c.to_addr, outbox.c.subject,
                  outbox.c.context, outbox.c.language, outbox.c.state, outbox.c.attempts,
                  outbox.c.created_at, outbox.c.sent_at)
        .where(outbox.c.endorsement_id.in_(ids)).order_by(outbox.c.id))
    events = await db.fetch_all(
        sa.select(audit_log.c.target_id, audit_log.c.action, audit_log.c.created_at)
        .where(audit_log.c.target_type == "endorsement", audit_log.c.target_id.in_(ids))
        .order_by(audit_log.c.id))
    items = []
    for r in rows:
        record = {name: _value(r[name]) for name in r.keys() if name not in _NOT_EXPORTED}
        record["state_history"] = [
            {"state": state, "at": _value(r[column])}
            for state, column in (("submitted", "created_at"), ("confirmed", "confirmed_at"),
                                  ("moderated", "moderated_at"), ("listed", "listed_at"),
                                  ("withdrawn", "withdrawn_at"))
            if r[column] is not None
        ]
        # Not what a queued email says in full: that holds its signed link, the subject tells it.
        record["emails"] = [{**{k: _value(m[k]) for k in m.keys() if k not in ("endorsement_id", "context")},
                             "subject": queued_subject(env, m)}
                            for m in emails if m["endorsement_id"] == r["id"]]
        record["events"] = [{"action": ev["action"], "at": _value(ev["created_at"])}
                            for ev in events if ev["target_id"] == r["id"]]
        items.append(record)
    return {"generated_at": _value(utcnow()), "endorsements": items,
            "note": "Rate-limit counters hold only keyed hashes of addresses and are kept at most one day."}


@dataclass(frozen=True)
class PurgeResult:
    endorsements: int
    emails: int
    rate_events: int


UNCONFIRMED = (S.PENDING.value, S.QUARANTINED.value)


async def purge_unconfirmed(db: Database, *, retention_days: int, now: dt.datetime | None = None) -> PurgeResult:
    """Delete endorsements never confirmed within `retention_days` of their last change, their
    emails, delivered emails older than that, and expired rate-limit counters."""
    cutoff = (now or utcnow()) - dt.timedelta(days=retention_days)
    stale = sa.and_(e.c.state.in_(UNCONFIRMED), e.c.updated_at < cutoff)
    async with db.write():
        ids = [r["id"] for r in await db.fetch_all(sa.select(e.c.id).where(stale))]
        emails = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            emails += int(await db.fetch_val(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.endorsement_id.in_(chunk))) or 0)
            await db.execute(outbox.delete().where(outbox.c.endorsement_id.in_(chunk)))
            await db.execute(e.delete().where(e.c.id.in_(chunk), e.c.state.in_(UNCONFIRMED)))
        # Delivered or given-up emails keep an address: no longer needed after the same time.
        done = sa.and_(outbox.c.state.in_((OutboxState.SENT.value, OutboxState.FAILED.value)),
                       outbox.c.created_at < cutoff)
        old = int(await db.fetch_val(sa.select(sa.func.count()).select_from(outbox).where(done)) or 0)
        if old:
            await db.execute(outbox.delete().where(done))
    pruned = await prune_rate_events(db)
    return PurgeResult(endorsements=len(ids), emails=emails + old, rate_events=pruned)
