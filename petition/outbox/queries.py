from __future__ import annotations

import datetime as dt
import random
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


async def claim_due(db: Database, *, worker_id: str, limit: int, lease_seconds: float) -> Sequence[Row]:
    """Claim up to `limit` due emails for this worker, in one statement.

    On PostgreSQL `FOR UPDATE SKIP LOCKED` lets several workers claim side by side
    without waiting for or double-claiming each other's rows. A row claimed by a
    worker that died is claimable again once its lease has run out.
    """
    now = utcnow()
    stale = now - dt.timedelta(seconds=lease_seconds)
    due = sa.or_(
        sa.and_(outbox.c.state == Q.QUEUED.value, outbox.c.next_attempt_at <= now),
        sa.and_(outbox.c.state == Q.SENDING.value, outbox.c.claimed_at < stale),
    )
    candidates = sa.select(outbox.c.id).where(due).order_by(outbox.c.next_attempt_at, outbox.c.id).limit(limit)
    if db.is_sqlite:
        # One writer at a time (Database.write): a plain subquery is enough.
        claimed: sa.ColumnElement[bool] = outbox.c.id.in_(candidates.scalar_subquery())
    else:
        # A MATERIALIZED CTE runs the locking SELECT once. As `id IN (subquery)` the planner
        # may pick a nested-loop semi-join that rescans the LIMIT … SKIP LOCKED subquery for
        # every outer row, each rescan locking a fresh batch: one worker then claimed the
        # whole queue (found by tests/delivery/test_two_workers.py).
        claim = candidates.with_for_update(skip_locked=True).cte("claim").prefix_with("MATERIALIZED")
        claimed = outbox.c.id == claim.c.id
    statement = (
        outbox.update()
        .where(claimed, due)
        .values(state=Q.SENDING.value, claimed_at=now, claimed_by=worker_id, attempts=outbox.c.attempts + 1)
        .returning(*outbox.c)
    )
    async with db.write():
        return await db.fetch_all(statement)


async def mark_sent(db: Database, *, outbox_id: int, worker_id: str, subject: str) -> None:
    async with db.write():
        await db.execute(
            outbox.update()
            .where(outbox.c.id == outbox_id, outbox.c.claimed_by == worker_id)
            # What the email said holds signed links: keep no copy once delivered, but its subject.
            .values(
                state=Q.SENT.value,
                sent_at=utcnow(),
                subject=subject[:300],
                context=None,
                body_text="",
                body_html="",
                last_error=None,
                claimed_at=None,
            )
        )


def _subject(subject: str | None) -> dict[str, str]:
    return {} if subject is None else {"subject": subject[:300]}


async def mark_retry(
    db: Database, *, outbox_id: int, worker_id: str, delay: float, error: str, subject: str | None = None
) -> None:
    async with db.write():
        await db.execute(
            outbox.update()
            .where(outbox.c.id == outbox_id, outbox.c.claimed_by == worker_id)
            .values(
                state=Q.QUEUED.value,
                claimed_at=None,
                claimed_by=None,
                last_error=error[:500],
                next_attempt_at=utcnow() + dt.timedelta(seconds=delay),
                **_subject(subject),
            )
        )


async def mark_failed(db: Database, *, outbox_id: int, worker_id: str, error: str, subject: str | None = None) -> None:
    async with db.write():
        await db.execute(
            outbox.update()
            .where(outbox.c.id == outbox_id, outbox.c.claimed_by == worker_id)
            # Never to be sent: keep nothing that holds a signed link.
            .values(
                state=Q.FAILED.value,
                claimed_at=None,
                last_error=error[:500],
                context=None,
                body_text="",
                body_html="",
                **_subject(subject),
            )
        )


async def uncount_attempt(db: Database, *, outbox_id: int) -> None:
    """The relay never answered: this try does not count towards the limit."""
    async with db.write():
        await db.execute(outbox.update().where(outbox.c.id == outbox_id).values(attempts=outbox.c.attempts - 1))


async def outbox_health(db: Database) -> dict[str, int]:
    rows = await db.fetch_all(sa.select(outbox.c.state, sa.func.count().label("n")).group_by(outbox.c.state))
    counts = {state.value: 0 for state in OutboxState}
    counts.update({row["state"]: int(row["n"]) for row in rows})
    return counts
