"""A second officer's countersignature: "confirmed by two officers".

An email confirmation proves one mailbox. A named organisation's contact may ask another person
of the organisation to countersign: from the thank-you email's link (`/countersign/{token}`,
bound to the endorsement and its nonce) they give that person's address, and the platform
emails them a link of their own (`/countersignature/{token}`, bound to this invitation's
nonce). Their page shows what they would countersign; only its POST, with their name, their
role and their word that they may sign for the organisation, records it (mail scanners follow
GETs). They may instead answer that this is not their organisation's doing, which the
organisers see.

What an attacker would try, and what stops it:
- the contact's own mailbox in another spelling (`Office+x@Example.ORG`) is refused: the
  addresses are compared in their canonical form (petition.endorsements.vocabulary);
- a flood of invitations to someone's address: capped per endorsement and per invited mailbox
  (petition.abuse.limits), and each new invitation kills the link of the last;
- countersigning one record and then changing it: the mark holds only while the public record
  is the one countersigned (`record_digest`);
- an anonymous organisation is offered none: an email naming it to a third address, and a mark
  beside it, would be for nobody's benefit.

No address is stored here: the invitation email carries it through the outbox (whose sent
emails the retention purge deletes); its registrable domain stays, for the organisers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from petition.db import Database, Row
from petition.endorsements.tables import countersignatures, endorsements
from petition.identity.domains import registrable_domain
from petition.randomness import random_hex
from petition.schema import utcnow

c = countersignatures

#: The public record a countersignature covers: what the officer's page shows of it.
COUNTERSIGNED_FIELDS = ("country", "organisation_name", "organisation_type", "city", "website")


def record_digest(row: Mapping[str, Any]) -> str:
    """SHA-256 of the public record `row` gives (its COUNTERSIGNED_FIELDS)."""
    record = {name: row[name] or "" for name in COUNTERSIGNED_FIELDS}
    return hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def is_countersigned(row: Mapping[str, Any]) -> bool:
    """Whether a row read with `countersigned_hash` (see `COUNTERSIGNED_HASH`) shows the mark:
    countersigned, and its public record unchanged since."""
    digest = row["countersigned_hash"]
    return bool(digest) and digest == record_digest(row)


#: The column queries add beside an endorsement's public record, from `countersigned_join`.
COUNTERSIGNED_HASH = c.c.record_hash.label("countersigned_hash")


def countersigned_join(endorsement_id: Any) -> Any:
    """The outer-join condition that gives an endorsement its countersignature, if it has one."""
    return sa.and_(c.c.endorsement_id == endorsement_id, c.c.countersigned_at.is_not(None))


def email_domain(address: str) -> str:
    host = address.rpartition("@")[2]
    return registrable_domain(f"https://{host}/") or host.lower()[:253]


async def get_countersignature(db: Database, *, endorsement_id: int) -> Row | None:
    return await db.fetch_one(c.select().where(c.c.endorsement_id == endorsement_id))


async def invite(db: Database, *, endorsement_id: int, address: str) -> str:
    """Open (or replace) the endorsement's invitation; its new nonce. A countersignature given
    already is kept until the new invitee countersigns. Call inside a `db.write()`."""
    nonce = random_hex(16)
    values = {"nonce": nonce, "email_domain": email_domain(address), "invited_at": utcnow(), "declined_at": None}
    existing = await get_countersignature(db, endorsement_id=endorsement_id)
    if existing is None:
        await db.execute(c.insert().values(endorsement_id=endorsement_id, **values))
    else:
        await db.execute(c.update().where(c.c.id == existing["id"]).values(**values))
    return nonce


async def invitation(db: Database, *, endorsement_id: int, nonce: str) -> Row | None:
    """The invitation a link names, while it is the endorsement's current one."""
    return await db.fetch_one(c.select().where(c.c.endorsement_id == endorsement_id, c.c.nonce == nonce))


async def countersign(
    db: Database, *, invitation_id: int, nonce: str, name: str, role: str, endorsement: Mapping[str, Any]
) -> bool:
    """Record the countersignature of the record `endorsement` as shown; False when the
    invitation was replaced meanwhile. The link keeps working (its page then says it is done),
    until a new invitation replaces it or it expires."""
    done = await db.fetch_one(
        c.update()
        .where(c.c.id == invitation_id, c.c.nonce == nonce)
        .values(
            officer_name=name,
            officer_role=role,
            countersigned_at=utcnow(),
            record_hash=record_digest(endorsement),
            declined_at=None,
        )
        .returning(c.c.endorsement_id)
    )
    if done is not None:
        await _public_changed(db, int(done["endorsement_id"]))
    return done is not None


async def decline(db: Database, *, invitation_id: int, nonce: str) -> bool:
    """The invited person says this is not their organisation's doing: the organisers see it.
    A countersignature given before (by someone else) is withdrawn with it. Their link can then
    do nothing more; only a new invitation reopens it."""
    done = await db.fetch_one(
        c.update()
        .where(c.c.id == invitation_id, c.c.nonce == nonce)
        .values(
            declined_at=utcnow(),
            countersigned_at=None,
            record_hash=None,
            officer_name=None,
            officer_role=None,
        )
        .returning(c.c.endorsement_id)
    )
    if done is not None:
        await _public_changed(db, int(done["endorsement_id"]))
    return done is not None


async def _public_changed(db: Database, endorsement_id: int) -> None:
    # The public lists, open data and their caches and ETags follow `updated_at` (petition.publish).
    await db.execute(endorsements.update().where(endorsements.c.id == endorsement_id).values(updated_at=utcnow()))
