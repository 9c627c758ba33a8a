"""The loop every background worker shares: do what is due, else sleep until woken or polled."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from petition.schema import utcnow


class PollingWorker:
    """Subclasses implement `run_once()`, returning whether it found work (then it runs again at once).

    `notify()` wakes the loop early (something was queued in this process); `stop()` ends
    it after the current pass. A failing pass (the database restarting, say) is logged and
    the loop goes on.
    """

    name = "worker"
    log = logging.getLogger("petition")

    def __init__(self, poll_interval: float) -> None:
        self.poll_interval = poll_interval
        self.wake = asyncio.Event()
        self._stopping = asyncio.Event()
        #: When a pass last started or ended: the heartbeat petition.operations.heartbeats records.
        self.beat_at: dt.datetime | None = None

    @property
    def worker_id(self) -> str:
        raise NotImplementedError

    def notify(self) -> None:
        self.wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self.wake.set()

    async def run_once(self) -> int | bool:
        raise NotImplementedError

    async def run(self) -> None:
        self.log.info("%s %s started", self.name, self.worker_id)
        while not self._stopping.is_set():
            self.beat_at = utcnow()
            try:
                handled = await self.run_once()
            except Exception:  # noqa: BLE001 - keep going; the next pass may succeed
                self.log.exception("%s pass failed; retrying", self.name)
                handled = False
            self.beat_at = utcnow()
            if handled:
                continue
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), self.poll_interval)
            except TimeoutError:
                pass
        self.log.info("%s %s stopped", self.name, self.worker_id)
