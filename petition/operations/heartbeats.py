"""Each worker's heartbeat, written every `HEARTBEAT_INTERVAL` seconds by the process it runs in.

The beat is when the worker last started or finished a pass of its loop (`PollingWorker.beat_at`),
not merely that its process lives: a worker stuck in one pass falls silent too.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from petition.db import Database, Row
from petition.operations.tables import worker_heartbeats
from petition.polling import PollingWorker
from petition.schema import utcnow

log = logging.getLogger("petition.operations")

HEARTBEAT_INTERVAL = 15.0
#: A row not beaten for this long belongs to a worker that is gone (killed, its host lost).
FORGET_AFTER = dt.timedelta(days=1)


class Heartbeats:
    """Records the beats of this process's workers until stopped; then deletes their rows."""

    def __init__(self, db: Database, workers: Sequence[PollingWorker], interval: float = HEARTBEAT_INTERVAL) -> None:
        self.db = db
        self.workers = list(workers)
        self.interval = interval
        self.started_at = utcnow()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.beat()
            except Exception as exc:  # noqa: BLE001 - the database may be restarting: beat again later
                log.warning("recording worker heartbeats failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
        try:
            async with self.db.write():
                await self.db.execute(
                    worker_heartbeats.delete().where(
                        worker_heartbeats.c.worker_id.in_([w.worker_id for w in self.workers])
                    )
                )
        except Exception as exc:  # noqa: BLE001 - the row is forgotten after a day anyway
            log.warning("removing worker heartbeats failed: %s", type(exc).__name__)

    async def beat(self) -> None:
        insert = sqlite.insert if self.db.is_sqlite else postgresql.insert
        async with self.db.write():
            for worker in self.workers:
                if worker.beat_at is None:
                    continue
                statement = insert(worker_heartbeats).values(
                    worker_id=worker.worker_id, worker=worker.name, started_at=self.started_at, beat_at=worker.beat_at
                )
                await self.db.execute(
                    statement.on_conflict_do_update(index_elements=["worker_id"], set_={"beat_at": worker.beat_at})
                )
            await self.db.execute(
                worker_heartbeats.delete().where(worker_heartbeats.c.beat_at < utcnow() - FORGET_AFTER)
            )


async def latest_beats(db: Database) -> Sequence[Row]:
    """Every worker's row, the freshest first."""
    return await db.fetch_all(sa.select(worker_heartbeats).order_by(worker_heartbeats.c.beat_at.desc()))
