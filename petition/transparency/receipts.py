"""Receipts: what an organisation's link from the thank-you email shows of its public log entry.

A receipt names an endorsement and its public entry id (`public_record_heads`), signed with
SECRET_KEY (`Purpose.RECEIPT`, no expiry): the entry id alone, which the log publishes, opens
nothing, so an anonymous organisation's receipt stays its own. It holds the entry's latest
leaf (its `listed` one, or the `withdrawn` or `delisted` that followed), the leaf's index, the
latest signed checkpoint and the inclusion proof of that index in that checkpoint's size —
checked here, so the page can say it verifies. An anonymous entry's receipt also holds what
opens its commitment (the record and the salt), which only the holder of the link sees.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from petition.db import Database
from petition.endorsements.public_record import LISTED, PUBLIC_FIELDS, canonical, commitment
from petition.endorsements.tables import endorsements, public_record_heads
from petition.transparency import merkle, store
from petition.transparency.tables import log_leaves

heads = public_record_heads


class Status(enum.StrEnum):
    #: The entry is in the log, in the latest checkpoint.
    LOGGED = "logged"
    #: Listed, queued for the log's worker: in a checkpoint within seconds.
    QUEUED = "queued"
    #: Not listed yet (held, or waiting for the organisers): no entry until it is.
    NOT_LISTED = "not_listed"


@dataclass(frozen=True)
class Opening:
    """What opens an anonymous entry's commitment: SHA-256(`text`) is the commitment."""

    salt: str
    text: str


@dataclass(frozen=True)
class Receipt:
    status: Status
    entry_id: str
    appeal: str
    visibility: str
    leaf: str | None = None
    index: int | None = None
    checkpoint: store.Published | None = None
    inclusion: tuple[bytes, ...] = ()
    verified: bool = False
    opening: Opening | None = None

    @property
    def record(self) -> dict[str, Any]:
        return json.loads(self.leaf) if self.leaf else {}

    @property
    def event(self) -> str | None:
        return self.record.get("event")

    def as_json(self) -> dict[str, object]:
        """The contract's JSON (DESIGN.md): `leaf`, `index`, `checkpoint`, `inclusion`."""
        assert self.status is Status.LOGGED and self.checkpoint is not None
        return {
            "leaf": self.leaf,
            "index": self.index,
            "checkpoint": self.checkpoint.note,
            "inclusion": store.encode(self.inclusion),
        }


async def find(db: Database, *, endorsement_id: int, entry_id: str) -> Receipt | None:
    """The receipt a token names, or None when no such entry is this endorsement's."""
    head = await db.fetch_one(
        heads.select().where(heads.c.endorsement_id == endorsement_id, heads.c.entry_id == entry_id)
    )
    if head is None:
        return None
    base = {"entry_id": entry_id, "appeal": head["appeal"], "visibility": head["visibility"]}
    leaves = await db.fetch_values(
        sa.select(log_leaves.c.idx, log_leaves.c.leaf)
        .where(log_leaves.c.entry_id == entry_id)
        .order_by(log_leaves.c.idx)
    )
    checkpoint = await store.latest(db)
    logged = [(int(idx), str(leaf)) for idx, leaf in leaves if checkpoint is not None and int(idx) < checkpoint.size]
    if not logged or checkpoint is None:
        return Receipt(status=Status.QUEUED if head["listed"] else Status.NOT_LISTED, **base)
    index, leaf = logged[-1]
    proof = await store.inclusion_proof(db, index, checkpoint.size)
    try:
        merkle.verify_inclusion(index, checkpoint.size, merkle.leaf_hash(leaf.encode()), proof, checkpoint.root)
        verified = True
    except merkle.ProofError:
        verified = False
    opening = None
    listed = [json.loads(text) for _idx, text in logged if json.loads(text).get("event") == LISTED]
    if listed and "commitment" in listed[-1]:
        opening = await _opening(db, endorsement_id, head["salt"], listed[-1]["commitment"])
    return Receipt(
        status=Status.LOGGED,
        leaf=leaf,
        index=index,
        checkpoint=checkpoint,
        inclusion=tuple(proof),
        verified=verified,
        opening=opening,
        **base,
    )


async def _opening(db: Database, endorsement_id: int, salt: str, expected: str) -> Opening | None:
    """The record and salt that open `expected`, if the record still does (it may have been
    corrected since, or erased)."""
    row = await db.fetch_one(endorsements.select().where(endorsements.c.id == endorsement_id))
    if row is None:
        return None
    record = {"country": row["country"], **{name: row[name] for name in PUBLIC_FIELDS}}
    if commitment(record, salt) != expected:
        return None
    return Opening(salt=salt, text=canonical({**record, "salt": salt}))
