from __future__ import annotations

import datetime as dt
import random
import secrets
from collections.abc import Sequence

import sqlalchemy as sa

from petition.db import Database, Row
from petition.outbox.states import OutboxState
from petition.outbox.tables import outbox
from petition.schema import utcnow

Q = OutboxState


def _jitter(base: float, cap: float) -> float:
    """±10 % so retries do not stampede, never beyond the cap."""
    return min(cap, base * random.uniform(0.9, 1.1))


def backoff_seconds(attempts: int, cap: float) -> float:
    """30 s, 1 min, 2 min, … capped."""
    return _jitter(min(cap, 30.0 * 2 ** min(max(0, attempts - 1), 30)), cap)


def outage_backoff_seconds(created_at: dt.datetime, cap: float) -> float:
    """The relay did not answer: wait about as long as the email has waited so far.

    Such tries do not count as attempts (an outage must not exhaust them), so the
    attempt count cannot grow the delay; the email's age does: 30 s, 1 min, 2 min, … capped.
    """
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=dt.UTC)
    waited = (utcnow() - created_at).total_seconds()
    return _jitter(min(cap, max(30.0, waited)), cap)


def new_claim_token() -> str:
    """What fences one claim: only the worker that holds it may renew it or record a result."""
    return secrets.token_hex(16)


async def claim_next(db: Database, *, worker_id: str, lease_seconds: float) -> Row | None:
    """Claim the next due email for this worker alone, under a token of its own; None: nothing due.

    One email at a time: a worker holds at most the one it is sending, so nothing else it
    claimed waits on a slow relay or a database failure until a lease runs out. On PostgreSQL
    `FOR UPDATE SKIP LOCKED` lets several workers claim side by side without waiting for or
    double-claiming each other's rows. A row claimed by a worker that died (or lost touch with
    the database) is claimable again once its lease has run out; its new token fences out the
    worker that held it before.
    """
    now = utcnow()
    stale = now - dt.timedelta(seconds=lease_seconds)
    due = sa.or_(
        sa.and_(outbox.c.state == Q.QUEUED.value, outbox.c.next_attempt_at <= now),
        sa.and_(outbox.c.state == Q.SENDING.value, outbox.c.claimed_at < stale),
    )
    candidates = sa.select(outbox.c.id).where(due).order_by(outbox.c.next_attempt_at, outbox.c.id).limit(1)
    if db.is_sqlite:
        # One writer at a time (Database.write): a plain subquery is enough.
        claimed: sa.ColumnElement[bool] = outbox.c.id.in_(candidates.scalar_subquery())
    else:
        # A MATERIALIZED CTE runs the locking SELECT once. As `id IN (subquery)` the planner
        # may pick a nested-loop semi-join that rescans the LIMIT … SKIP LOCKED subquery for
        # every outer row, each rescan locking a fresh row (found by tests/delivery/test_two_workers.py).
        claim = candidates.with_for_update(skip_locked=True).cte("claim").prefix_with("MATERIALIZED")
        claimed = outbox.c.id == claim.c.id
    statement = (
        outbox.update()
        .where(claimed, due)
        .values(
            state=Q.SENDING.value,
            claimed_at=now,
            claimed_by=worker_id,
            claim_token=new_claim_token(),
            attempts=outbox.c.attempts + 1,
        )
        .returning(*outbox.c)
    )
    async with db.write():
        return await db.fetch_one(statement)


def _held(outbox_id: int, token: str) -> sa.ColumnElement[bool]:
    """The row is still this claim's: nobody took it over after its lease ran out."""
    return sa.and_(outbox.c.id == outbox_id, outbox.c.claim_token == token, outbox.c.state == Q.SENDING.value)


async def _update_held(db: Database, outbox_id: int, token: str, **values: object) -> bool:
    """Whether the claim was still held (and so the values written)."""
    async with db.write():
        row = await db.fetch_one(outbox.update().where(_held(outbox_id, token)).values(**values).returning(outbox.c.id))
    return row is not None


async def renew_claim(db: Database, *, outbox_id: int, token: str) -> bool:
    """Start the lease again; False: the claim is lost (another worker may be sending the email)."""
    return await _update_held(db, outbox_id, token, claimed_at=utcnow())


async def release_claim(db: Database, *, outbox_id: int, token: str) -> bool:
    """Never handed to the relay: due again at once, and this claim's attempt not counted."""
    return await _update_held(
        db,
        outbox_id,
        token,
        state=Q.QUEUED.value,
        claimed_at=None,
        claim_token=None,
        next_attempt_at=utcnow(),
        attempts=outbox.c.attempts - 1,
    )


async def mark_sent(db: Database, *, outbox_id: int, token: str, subject: str) -> bool:
    # What the email said holds signed links: keep no copy once delivered, but its subject.
    return await _update_held(
        db,
        outbox_id,
        token,
        state=Q.SENT.value,
        sent_at=utcnow(),
        subject=subject[:300],
        context=None,
        body_text="",
        body_html="",
        last_error=None,
        claimed_at=None,
        claim_token=None,
    )


def _subject(subject: str | None) -> dict[str, str]:
    return {} if subject is None else {"subject": subject[:300]}


async def mark_retry(
    db: Database,
    *,
    outbox_id: int,
    token: str,
    delay: float,
    error: str,
    subject: str | None = None,
    counts: bool = True,
) -> bool:
    """Due again after `delay`; `counts=False` (the relay never answered): this try is not an attempt."""
    return await _update_held(
        db,
        outbox_id,
        token,
        state=Q.QUEUED.value,
        claimed_at=None,
        claimed_by=None,
        claim_token=None,
        last_error=error[:500],
        next_attempt_at=utcnow() + dt.timedelta(seconds=delay),
        **({} if counts else {"attempts": outbox.c.attempts - 1}),
        **_subject(subject),
    )


async def mark_failed(db: Database, *, outbox_id: int, token: str, error: str, subject: str | None = None) -> bool:
    # Its context stays, so organisers can queue it again (`requeue_failed`); it holds no usable
    # link (those are signed when sent) and goes with its endorsement's purge. Bodies rendered by
    # a release before 0007 hold signed links: blanked, so such an email can never be queued again.
    return await _update_held(
        db,
        outbox_id,
        token,
        state=Q.FAILED.value,
        claimed_at=None,
        claim_token=None,
        last_error=error[:500],
        body_text="",
        body_html="",
        **_subject(subject),
    )


async def outbox_health(db: Database) -> dict[str, int]:
    rows = await db.fetch_all(sa.select(outbox.c.state, sa.func.count().label("n")).group_by(outbox.c.state))
    counts = {state.value: 0 for state in OutboxState}
    counts.update({row["state"]: int(row["n"]) for row in rows})
    return counts


#: Failed emails an organiser can queue again: what they say is kept (rows before 0007 kept
#: rendered bodies instead, blanked when they failed: those cannot be sent again).
_REQUEUEABLE = sa.and_(outbox.c.state == Q.FAILED.value, outbox.c.context.is_not(None))


async def list_failed(db: Database, *, limit: int = 200) -> Sequence[Row]:
    """The failed emails that can be queued again, newest first."""
    columns = (outbox.c.id, outbox.c.kind, outbox.c.to_addr, outbox.c.last_error, outbox.c.created_at)
    return await db.fetch_all(
        sa.select(*columns).where(_REQUEUEABLE).order_by(outbox.c.created_at.desc(), outbox.c.id.desc()).limit(limit)
    )


async def requeue_failed(db: Database, *, outbox_id: int | None = None) -> list[int]:
    """Queue failed emails again (one, or all): due now, their attempts counted afresh.

    Runs in the caller's transaction when there is one (its audit row goes with it).
    """
    where = _REQUEUEABLE if outbox_id is None else sa.and_(_REQUEUEABLE, outbox.c.id == outbox_id)
    async with db.write():
        rows = await db.fetch_all(
            outbox.update()
            .where(where)
            .values(
                state=Q.QUEUED.value,
                attempts=0,
                next_attempt_at=utcnow(),
                claimed_at=None,
                claimed_by=None,
                claim_token=None,
            )
            .returning(outbox.c.id)
        )
    return sorted(int(row["id"]) for row in rows)
