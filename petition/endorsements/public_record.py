"""What the public list says of each endorsement, noted for the public log as it changes.

Every transaction that may change it — a Confirm, an organiser's decision, a correction, a
withdrawal, an appeal's moderation setting — calls `note_public_changes` with the records it
touched, before it commits. That compares each record's public state now with what the log
last said of it (`public_record_heads`) and queues a leaf for each difference
(`public_record_events`), which the log's worker appends (petition.transparency). So the log
follows the application, and only the application: a row edited or deleted behind its back
leaves the log and the list disagreeing, which the audit shows.

A leaf is canonical JSON (sorted keys, no spaces, UTF-8; the contract in DESIGN.md):

- `listed`: `appeal` (slug), `event`, `entry` (a random public id, the same for every event
  of one listing: a record listed again after its entry ended, or whose visibility changed,
  starts a new entry, so that the log never ties a name to an anonymous entry), `country`,
  `visibility`, `at`; a `public` one adds `organisation_name`,
  `organisation_type`, `city`, `website` and `text_hash` (the appeal text it endorsed); an
  `anonymous` one adds only `commitment`, the SHA-256 of its record and a secret salt, and
  names nothing; its `at` is the day only. A change of a listed record's public facts is a new `listed` leaf.
- `withdrawn` (by its contact) and `delisted` (rejected, held, or no longer listed by the
  appeal's moderation): the same keys but the record's, which the `listed` leaf before gave.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from petition.appeals.tables import appeals
from petition.db import Database, Row
from petition.endorsements.states import EndorsementState, Visibility, listed_states
from petition.endorsements.tables import endorsements, public_record_events, public_record_heads
from petition.randomness import random_hex
from petition.schema import utcnow

LISTED, WITHDRAWN, DELISTED = "listed", "withdrawn", "delisted"
#: The public record of a named organisation, as its `listed` leaf gives it.
PUBLIC_FIELDS = ("organisation_name", "organisation_type", "city", "website", "text_hash")
#: Records read per query (one IN list, within every backend's limits).
_CHUNK = 2000

e = endorsements
heads = public_record_heads


def canonical(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def log_time(value: dt.datetime, *, anonymous: bool = False) -> str:
    """A leaf's time: UTC to the second, RFC 3339; an anonymous entry's only the day (its
    moment, next to its country, could point at an organisation seen acting at that time)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d" if anonymous else "%Y-%m-%dT%H:%M:%SZ")


def commitment(record: dict[str, Any], salt: str) -> str:
    """An anonymous entry's commitment: hides its record, binds it (the organisation, given the
    salt, can show which entry is theirs)."""
    return hashlib.sha256(canonical({**record, "salt": salt}).encode()).hexdigest()


def _record(row: Row) -> dict[str, Any]:
    return {"country": row["country"], **{name: row[name] for name in PUBLIC_FIELDS}}


async def note_public_changes(db: Database, ids: Iterable[int], *, now: dt.datetime | None = None) -> int:
    """Queue a log leaf for each of these records whose public state differs from what the log
    last said of it; how many. Call inside the `db.write()` of the change."""
    wanted = sorted(set(ids))
    noted = 0
    for at in range(0, len(wanted), _CHUNK):
        noted += await _note(db, wanted[at : at + _CHUNK], now or utcnow())
    return noted


async def reserve_entry(db: Database, endorsement_id: int) -> str:
    """The public entry id of an endorsement, given it now if the log has none for it yet (a
    record not listed yet: held, or waiting for the organisers). Its receipt names this id
    before the entry exists; `_note` gives the entry this id (and this salt) once it is listed.
    Call inside the `db.write()` of the change, after `note_public_changes`."""
    known = await db.fetch_one(heads.select().where(heads.c.endorsement_id == endorsement_id))
    if known is not None and (known["listed"] or not known["record_hash"]):
        return str(known["entry_id"])  # listed now, or reserved and never logged
    row = await db.fetch_one(
        sa.select(e.c.country, e.c.visibility, appeals.c.slug)
        .join(appeals, appeals.c.id == e.c.appeal_id)
        .where(e.c.id == endorsement_id)
    )
    if row is None:
        raise LookupError(endorsement_id)
    entry_id = random_hex(16)
    values = {
        "entry_id": entry_id,
        "salt": random_hex(16),
        "appeal": row["slug"],
        "country": row["country"],
        "visibility": row["visibility"],
        "listed": False,
        "record_hash": "",
    }
    if known is None:
        await db.execute(heads.insert().values(endorsement_id=endorsement_id, **values))
    else:  # its last listing ended: the next one is a new entry (see `_note`)
        await db.execute(heads.update().where(heads.c.endorsement_id == endorsement_id).values(**values))
    return entry_id


def _ended(head: Any, event: str, now: dt.datetime) -> dict[str, Any]:
    """The queued leaf that ends the listing `head` describes."""
    leaf = {
        "appeal": head["appeal"],
        "event": event,
        "entry": head["entry_id"],
        "country": head["country"],
        "visibility": head["visibility"],
        "at": log_time(now, anonymous=head["visibility"] != Visibility.PUBLIC),
    }
    return {"entry_id": leaf["entry"], "leaf": canonical(leaf), "created_at": now}


async def note_appeal(db: Database, appeal_id: int) -> int:
    """Every record of an appeal (its moderation setting changed what is listed)."""
    ids = await db.fetch_values(sa.select(e.c.id).where(e.c.appeal_id == appeal_id).order_by(e.c.id))
    return await note_public_changes(db, [int(row[0]) for row in ids])


async def _note(db: Database, ids: list[int], now: dt.datetime) -> int:
    rows = {
        int(row["id"]): row
        for row in await db.fetch_all(
            sa.select(e, appeals.c.slug, appeals.c.moderation)
            .join(appeals, appeals.c.id == e.c.appeal_id)
            .where(e.c.id.in_(ids))
        )
    }
    known = {
        int(row["endorsement_id"]): row
        for row in await db.fetch_all(heads.select().where(heads.c.endorsement_id.in_(ids)))
    }
    events: list[dict[str, Any]] = []
    new_heads: list[dict[str, Any]] = []
    for endorsement_id in ids:
        row, head = rows.get(endorsement_id), known.get(endorsement_id)
        listed = row is not None and row["state"] in listed_states(row["moderation"])
        if listed:
            assert row is not None
            record = _record(row)
            digest = hashlib.sha256(canonical({**record, "visibility": row["visibility"]}).encode()).hexdigest()
            if head is not None and head["listed"] and head["record_hash"] == digest:
                continue
            if head is not None and head["listed"] and head["visibility"] != row["visibility"]:
                # Named → anonymous (or back): the listing under the old visibility ends, and the
                # new one is another entry, so that the log never ties a name to an anonymous entry.
                events.append(_ended(head, WITHDRAWN, now))
                head = dict(head) | {"listed": False, "record_hash": "used"}
            # One entry is one listing: a record listed again after its entry ended (withdrawn,
            # delisted, or its visibility changed) gets a new id and salt; one reserved for it
            # (`reserve_entry`: a receipt before the listing) and never logged is used as it is.
            fresh = head is None or (not head["listed"] and bool(head["record_hash"]))
            entry_id = random_hex(16) if fresh or head is None else head["entry_id"]
            salt = random_hex(16) if fresh or head is None else head["salt"]
            leaf: dict[str, Any] = {
                "appeal": row["slug"],
                "event": LISTED,
                "entry": entry_id,
                "country": row["country"],
                "visibility": row["visibility"],
                "at": log_time(now, anonymous=row["visibility"] != Visibility.PUBLIC),
            }
            if row["visibility"] == Visibility.PUBLIC:
                leaf.update({name: record[name] for name in PUBLIC_FIELDS})
            else:
                leaf["commitment"] = commitment(record, salt)
            values = {
                "entry_id": entry_id,
                "salt": salt,
                "appeal": row["slug"],
                "country": row["country"],
                "visibility": row["visibility"],
                "listed": True,
                "record_hash": digest,
            }
            if head is None:
                new_heads.append({"endorsement_id": endorsement_id, **values})
            else:
                await db.execute(heads.update().where(heads.c.endorsement_id == endorsement_id).values(**values))
        else:
            if head is None or not head["listed"]:
                continue
            withdrawn = row is not None and row["state"] == EndorsementState.WITHDRAWN
            events.append(_ended(head, WITHDRAWN if withdrawn else DELISTED, now))
            await db.execute(heads.update().where(heads.c.endorsement_id == endorsement_id).values(listed=False))
            continue
        events.append({"entry_id": leaf["entry"], "leaf": canonical(leaf), "created_at": now})
    # Many rows per statement (8 columns: within SQLite's 999 parameters).
    for first in range(0, len(new_heads), 100):
        await db.execute(heads.insert().values(new_heads[first : first + 100]))
    for first in range(0, len(events), 200):
        await db.execute(public_record_events.insert().values(events[first : first + 200]))
    return len(events)
