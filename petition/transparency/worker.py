"""The log's worker: appends what the application queued, in batches, and signs checkpoints.

It runs beside the outbox worker (`petition worker`, or in `serve` with RUN_WORKER): an entry
queued by a listing is in a signed checkpoint within one poll interval (2 s by default) when a
worker runs — the contract's bound is 60 s. Any number of workers may run: appends take turns.
"""

from __future__ import annotations

import logging
import os
import socket

from petition.db import Database
from petition.polling import PollingWorker
from petition.randomness import random_hex
from petition.settings import Settings
from petition.transparency import store
from petition.transparency.keys import log_signer
from petition.transparency.note import Signer

log = logging.getLogger("petition.transparency")


class LogWorker(PollingWorker):
    name = "log worker"
    log = log

    def __init__(self, db: Database, settings: Settings, *, signer: Signer | None = None) -> None:
        super().__init__(settings.worker_poll_interval)
        self.db = db
        self.settings = settings
        self.signer = signer  # the deployment's key, read (or made) on the first pass
        self._id = f"log:{socket.gethostname()[:40]}:{os.getpid()}:{random_hex(4)}"

    @property
    def worker_id(self) -> str:
        return self._id

    async def run_once(self) -> bool:
        if self.signer is None:
            self.signer = await log_signer(self.db, self.settings)
        appended = await store.append(self.db, self.signer)
        if appended:
            log.info("log: %d entries appended", appended)
        return appended >= store.BATCH  # more may wait: go round again at once
