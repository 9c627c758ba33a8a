"""The log in the database: appending the queued leaves, signed checkpoints, and proofs.

One append at a time, whatever the number of workers: a PostgreSQL transaction-scoped
advisory lock (SQLite: the one writer). An append takes the leaves queued by
`petition.endorsements.public_record` in order, gives them the next indexes, stores every
Merkle node they complete, deletes them from the queue and signs a checkpoint of the new
size — all in one transaction, so a checkpoint never names a tree that is not stored.

A proof reads only the O(log n) complete nodes it needs (`petition.transparency.merkle`).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from petition.db import Database
from petition.endorsements.tables import public_record_events
from petition.schema import utcnow
from petition.transparency import merkle, trusted_time
from petition.transparency.note import Checkpoint, Signer
from petition.transparency.tables import log_checkpoints, log_leaves, log_nodes

log = logging.getLogger("petition.transparency")

#: Leaves appended by one transaction at most.
BATCH = 1000
#: Rows one INSERT writes at most (4 columns each: within SQLite's 999 parameters).
_ROWS_PER_INSERT = 200
#: Entries served by one request of /log/entries at most (the contract).
MAX_ENTRIES = 1000
#: Any constant of our own: the key of the advisory lock that makes appends take turns.
_APPEND_LOCK = 0x7065746C6F67  # "petlog"


@dataclass(frozen=True)
class Published:
    size: int
    root: bytes
    note: str
    key: str
    created_at: dt.datetime


def _perfect_ranges(start: int, end: int) -> list[tuple[int, int]]:
    """The (level, index) of the complete nodes MTH(D[start:end]) is made of (merkle's rule)."""
    n = end - start
    if n & (n - 1) == 0 and start % n == 0:
        return [(n.bit_length() - 1, start // n)]
    k = merkle.split_point(n)
    return _perfect_ranges(start, start + k) + _perfect_ranges(start + k, end)


class _Nodes:
    """MTH of the ranges a proof asks for, from the complete nodes read for it in one query."""

    def __init__(self, nodes: dict[tuple[int, int], bytes]) -> None:
        self.nodes = nodes

    def subtree(self, start: int, end: int) -> bytes:
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self.nodes[(n.bit_length() - 1, start // n)]
        k = merkle.split_point(n)
        return merkle.node_hash(self.subtree(start, start + k), self.subtree(start + k, end))


class _Recorder:
    """A SubtreeRoot that only notes which ranges are asked for (to read them in one query)."""

    def __init__(self) -> None:
        self.wanted: set[tuple[int, int]] = set()

    def subtree(self, start: int, end: int) -> bytes:
        self.wanted.update(_perfect_ranges(start, end))
        return bytes(32)


async def _read_nodes(db: Database, wanted: set[tuple[int, int]]) -> _Nodes:
    if not wanted:
        return _Nodes({})
    by_level: dict[int, list[int]] = {}
    for level, index in sorted(wanted):
        by_level.setdefault(level, []).append(index)
    # Per level, not as row values: SQLite plans `(level, idx) IN (…)` as a scan of the table.
    rows = await db.fetch_values(
        sa.select(log_nodes.c.level, log_nodes.c.idx, log_nodes.c.hash).where(
            sa.or_(*(sa.and_(log_nodes.c.level == level, log_nodes.c.idx.in_(ids)) for level, ids in by_level.items()))
        )
    )
    nodes = {(int(level), int(idx)): bytes(value) for level, idx, value in rows}
    missing = wanted - nodes.keys()
    if missing:
        raise merkle.ProofError(f"the stored tree lacks {len(missing)} node(s)")
    return _Nodes(nodes)


async def _proof(db: Database, make: object, *args: int) -> list[bytes]:
    recorder = _Recorder()
    make(*args, recorder.subtree)  # type: ignore[operator]
    nodes = await _read_nodes(db, recorder.wanted)
    return make(*args, nodes.subtree)  # type: ignore[operator, no-any-return]


async def inclusion_proof(db: Database, index: int, size: int) -> list[bytes]:
    return await _proof(db, merkle.inclusion_proof, index, size)


async def consistency_proof(db: Database, first: int, second: int) -> list[bytes]:
    return await _proof(db, merkle.consistency_proof, first, second)


async def root_at(db: Database, size: int) -> bytes:
    if size == 0:
        return merkle.EMPTY_ROOT
    nodes = await _read_nodes(db, set(_perfect_ranges(0, size)))
    return nodes.subtree(0, size)


async def latest(db: Database) -> Published | None:
    row = await db.fetch_one(log_checkpoints.select().order_by(log_checkpoints.c.size.desc()).limit(1))
    if row is None:
        return None
    return Published(int(row["size"]), bytes(row["root"]), row["note"], row["key"], row["created_at"])


async def checkpoint_of(db: Database, size: int) -> Published | None:
    row = await db.fetch_one(log_checkpoints.select().where(log_checkpoints.c.size == size))
    if row is None:
        return None
    return Published(int(row["size"]), bytes(row["root"]), row["note"], row["key"], row["created_at"])


async def entries(db: Database, start: int, end: int) -> Sequence[tuple[int, str]]:
    rows = await db.fetch_values(
        sa.select(log_leaves.c.idx, log_leaves.c.leaf)
        .where(log_leaves.c.idx >= start, log_leaves.c.idx < end)
        .order_by(log_leaves.c.idx)
    )
    return [(int(idx), str(leaf)) for idx, leaf in rows]


async def append(db: Database, signer: Signer, *, batch: int = BATCH) -> int:
    """Append up to `batch` queued leaves and sign a checkpoint of the new size; how many.

    With nothing queued, a log that has no checkpoint yet gets one of its empty tree, and one
    whose latest checkpoint another key signed gets one by this key (a key changed)."""
    async with db.write():
        if not db.is_sqlite:
            await db.execute(sa.text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_APPEND_LOCK))
        queued = await db.fetch_values(
            sa.select(public_record_events.c.id, public_record_events.c.entry_id, public_record_events.c.leaf)
            .order_by(public_record_events.c.id)
            .limit(batch)
        )
        size = int(await db.fetch_val(sa.select(sa.func.count()).select_from(log_leaves)))
        current = await latest(db)
        if not queued and current is not None and current.size == size and current.key == signer.vkey():
            return 0
        now = utcnow()
        # The right edge of the tree: the complete nodes a new leaf may complete a parent with.
        edge = {
            (level, index): value
            for level, index in ((lv, (size >> lv) - 1) for lv in range(size.bit_length()) if size >> lv & 1)
            for value in [await _one_node(db, level, index)]
        }
        new_leaves, new_nodes = [], []
        for offset, (_id, entry_id, leaf) in enumerate(queued):
            index = size + offset
            value = merkle.leaf_hash(str(leaf).encode())
            new_leaves.append({"idx": index, "entry_id": entry_id, "leaf": leaf, "created_at": now})
            new_nodes.append({"level": 0, "idx": index, "hash": value})
            edge[(0, index)] = value
            level, at = 0, index
            while at & 1:  # this node completes its parent
                value = merkle.node_hash(edge[(level, at - 1)], value)
                level, at = level + 1, at >> 1
                edge[(level, at)] = value
                new_nodes.append({"level": level, "idx": at, "hash": value})
        if new_leaves:
            # Many rows per statement: one round trip each (within every backend's parameter limit).
            for table, rows in ((log_leaves, new_leaves), (log_nodes, new_nodes)):
                for first in range(0, len(rows), _ROWS_PER_INSERT):
                    await db.execute(table.insert().values(rows[first : first + _ROWS_PER_INSERT]))
            # Exactly the rows appended: on PostgreSQL a change that took a lower id may commit
            # after the SELECT above, and `id <= last` would delete its leaf unlogged.
            appended_ids = [int(row[0]) for row in queued]
            await db.execute(public_record_events.delete().where(public_record_events.c.id.in_(appended_ids)))
        size += len(new_leaves)
        root = merkle.EMPTY_ROOT if size == 0 else await root_at(db, size)
        await sign_checkpoint(db, signer, size, root, now)
        return len(new_leaves)


async def _one_node(db: Database, level: int, index: int) -> bytes:
    value = await db.fetch_val(sa.select(log_nodes.c.hash).where(log_nodes.c.level == level, log_nodes.c.idx == index))
    if value is None:
        raise merkle.ProofError(f"the stored tree lacks node {level}/{index}")
    return bytes(value)


async def sign_checkpoint(db: Database, signer: Signer, size: int, root: bytes, now: dt.datetime) -> None:
    note = signer.sign(Checkpoint(signer.name, size, root).text())
    existing = await db.fetch_one(log_checkpoints.select().where(log_checkpoints.c.size == size))
    values = {"root": root, "note": note, "key": signer.vkey(), "created_at": now, "timestamp_token": None}
    if existing is None:
        await db.execute(log_checkpoints.insert().values(size=size, **values))
    else:  # a new key signs the same tree again
        await db.execute(log_checkpoints.update().where(log_checkpoints.c.size == size).values(**values))


#: Checkpoints one pass asks the timestamp authority about at most.
STAMP_BATCH = 20


async def stamp_checkpoints(db: Database, timestamp_url: str, *, limit: int = STAMP_BATCH) -> int:
    """Get an RFC 3161 token over SHA-256 of each unstamped checkpoint's note, newest first.

    The authority is asked outside any transaction; the token is stored only if the note is
    still the one stamped (a new key may sign the same size again). Stops at the first failure
    (the authority is down) and raises TimestampUnavailable: a later pass goes on. How many were
    stamped.
    """
    rows = await db.fetch_values(
        sa.select(log_checkpoints.c.size, log_checkpoints.c.note)
        .where(log_checkpoints.c.timestamp_token.is_(None))
        .order_by(log_checkpoints.c.size.desc())
        .limit(limit)
    )
    stamped = 0
    for size, note in rows:
        try:
            token = await trusted_time.token_for(timestamp_url, str(note).encode())
        except trusted_time.TimestampUnavailable as exc:
            log.info("log: checkpoint %s not timestamped yet (%s)", size, exc)
            raise
        async with db.write():
            await db.execute(
                log_checkpoints.update()
                .where(log_checkpoints.c.size == size, log_checkpoints.c.note == note)
                .values(timestamp_token=token)
            )
        stamped += 1
    return stamped


async def timestamp_token(db: Database, size: int) -> bytes | None:
    value = await db.fetch_val(sa.select(log_checkpoints.c.timestamp_token).where(log_checkpoints.c.size == size))
    return None if value is None else bytes(value)


def encode(hashes: Sequence[bytes]) -> list[str]:
    return [base64.b64encode(value).decode() for value in hashes]
