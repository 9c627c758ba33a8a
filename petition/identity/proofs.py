"""Domain proofs: their states, and the queries the page, the worker and the public side use.

A proof belongs to one endorsement and one domain (its website's registrable domain). It is
opened with a fresh challenge value when the organisation first opens its page; "check now"
queues a check that the worker makes (petition.identity.checks); a proved domain is checked
again every DOMAIN_PROOF_RECHECK_INTERVAL. A proof that no longer holds is `lapsed`, and the
public lists say so; an unproved challenge past its expiry is `expired`.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from petition.db import INTEGRITY_ERRORS, Database, Row
from petition.endorsements.tables import endorsements
from petition.identity.checks import CheckResult, Found
from petition.identity.tables import domain_proofs
from petition.randomness import random_hex
from petition.schema import utcnow

p = domain_proofs

#: "Check now" at most this often per proof (seconds): each is a DNS lookup and a request.
MIN_CHECK_INTERVAL = 30.0
#: How soon a proved domain whose check got no answer is tried again (seconds).
RETRY_AFTER_ERROR = 3600.0
#: How long a proof may go without a check that gets an answer before it lapses all the same.
UNANSWERED_GRACE = dt.timedelta(days=7)
#: How long a claimed check may take before another worker may make it (seconds).
CHECK_LEASE = 300.0


class ProofState(enum.StrEnum):
    PENDING = "pending"  # the challenge is out, not proved yet
    VERIFIED = "verified"  # the last check found the value
    LAPSED = "lapsed"  # proved once, a later check found it gone (shown as lapsed)
    EXPIRED = "expired"  # never proved before the challenge expired


#: The states the public side shows beside a named organisation.
SHOWN = (ProofState.VERIFIED.value, ProofState.LAPSED.value)
#: The states the worker still checks.
CHECKED = (ProofState.PENDING.value, ProofState.VERIFIED.value, ProofState.LAPSED.value)


async def get_proof(db: Database, *, endorsement_id: int) -> Row | None:
    return await db.fetch_one(p.select().where(p.c.endorsement_id == endorsement_id))


async def open_proof(db: Database, *, endorsement_id: int, domain: str, max_age: int) -> Row:
    """The endorsement's proof of `domain`: the one it has, or a new challenge when it has
    none, one for another domain (its website changed), or an expired one."""
    existing = await get_proof(db, endorsement_id=endorsement_id)
    if existing is not None and existing["domain"] == domain and existing["state"] != ProofState.EXPIRED:
        return existing
    now = utcnow()
    values: dict[str, Any] = {
        "domain": domain,
        "challenge": random_hex(16),
        "method": None,
        "state": ProofState.PENDING.value,
        "created_at": now,
        "expires_at": now + dt.timedelta(seconds=max_age),
        "verified_at": None,
        "held_at": None,
        "last_checked_at": None,
        "next_check_at": None,
        "last_result": "",
    }
    async with db.write():
        if existing is None:
            try:
                await db.execute(p.insert().values(endorsement_id=endorsement_id, **values))
            except INTEGRITY_ERRORS:
                pass  # another request opened it first: use that one
        else:
            await db.execute(
                p.update().where(p.c.id == existing["id"], p.c.challenge == existing["challenge"]).values(**values)
            )
            if existing["state"] in SHOWN:
                await _touch(db, endorsement_id, now)
    proof = await get_proof(db, endorsement_id=endorsement_id)
    assert proof is not None
    return proof


async def request_check(db: Database, *, proof: Row) -> dt.datetime | None:
    """Queue a check of `proof` (not before MIN_CHECK_INTERVAL after the last); None when it is
    no longer checked (expired)."""
    if proof["state"] not in CHECKED:
        return None
    now = utcnow()
    due = now
    if proof["last_checked_at"] is not None:
        due = max(now, aware(proof["last_checked_at"]) + dt.timedelta(seconds=MIN_CHECK_INTERVAL))
    if proof["next_check_at"] is not None and aware(proof["next_check_at"]) <= due:
        return aware(proof["next_check_at"])  # queued already
    async with db.write():
        await db.execute(
            p.update().where(p.c.id == proof["id"], p.c.challenge == proof["challenge"]).values(next_check_at=due)
        )
    return due


async def expire_challenges(db: Database, *, now: dt.datetime | None = None) -> int:
    """Every unproved challenge past its expiry becomes `expired` (it is never shown)."""
    now = now or utcnow()
    async with db.write():
        rows = await db.fetch_all(
            p.update()
            .where(p.c.state == ProofState.PENDING.value, p.c.expires_at < now)
            .values(state=ProofState.EXPIRED.value, next_check_at=None)
            .returning(p.c.id)
        )
    return len(rows)


async def claim_due(db: Database, *, now: dt.datetime | None = None) -> Row | None:
    """The next proof whose check is due, claimed for CHECK_LEASE seconds (any number of
    workers may run: the claim is a compare-and-set on `next_check_at`)."""
    now = now or utcnow()
    for _attempt in range(3):
        row = await db.fetch_one(
            p.select()
            .where(p.c.next_check_at.is_not(None), p.c.next_check_at <= now, p.c.state.in_(CHECKED))
            .order_by(p.c.next_check_at, p.c.id)
            .limit(1)
        )
        if row is None:
            return None
        async with db.write():
            claimed = await db.fetch_one(
                p.update()
                .where(p.c.id == row["id"], p.c.next_check_at == aware(row["next_check_at"]))
                .values(next_check_at=now + dt.timedelta(seconds=CHECK_LEASE))
                .returning(p.c.id)
            )
        if claimed is not None:
            return row
    return None


async def record_check(
    db: Database, *, proof: Row, result: CheckResult, recheck_interval: float, now: dt.datetime | None = None
) -> str:
    """What a check found, as the proof's new state (returned)."""
    now = now or utcnow()
    state = ProofState(proof["state"])
    values: dict[str, Any] = {"last_checked_at": now, "last_result": result.detail[:200]}
    recheck = now + dt.timedelta(seconds=recheck_interval)
    if result.found is Found.HOLDS:
        values.update(method=result.method, next_check_at=recheck, held_at=now)
        if state is not ProofState.VERIFIED:
            values.update(state=ProofState.VERIFIED.value, verified_at=now)
    elif result.found is Found.ABSENT:
        if state in (ProofState.VERIFIED, ProofState.LAPSED):
            values.update(state=ProofState.LAPSED.value, next_check_at=recheck)
        else:
            values.update(next_check_at=None)
    else:
        retry = now + dt.timedelta(seconds=min(recheck_interval, RETRY_AFTER_ERROR))
        values.update(next_check_at=retry if state in (ProofState.VERIFIED, ProofState.LAPSED) else None)
        held_at = proof["held_at"]
        if state is ProofState.VERIFIED and (held_at is None or aware(held_at) < now - UNANSWERED_GRACE):
            # No answer for a week is no proof: a domain whose DNS stays broken lapses too.
            values.update(state=ProofState.LAPSED.value)
    new_state = str(values.get("state", state.value))
    async with db.write():
        updated = await db.fetch_one(
            p.update()
            .where(p.c.id == proof["id"], p.c.challenge == proof["challenge"], p.c.state == state.value)
            .values(**values)
            .returning(p.c.id)
        )
        if updated is not None and new_state != state.value and (new_state in SHOWN or state.value in SHOWN):
            await _touch(db, proof["endorsement_id"], now)
    return new_state


def aware(when: dt.datetime) -> dt.datetime:
    """A stored time as an aware UTC datetime (`databases` hands PostgreSQL's back naive)."""
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


async def _touch(db: Database, endorsement_id: int, now: dt.datetime) -> None:
    # The public lists, open data and their caches and ETags follow `updated_at` (petition.publish).
    await db.execute(endorsements.update().where(endorsements.c.id == endorsement_id).values(updated_at=now))
