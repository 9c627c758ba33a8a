"""The domain proofs' worker: expires old challenges, and makes the checks that are due.

It runs beside the other workers (`petition worker`, or in `serve` with RUN_WORKER). A check
is queued by the organisation's "check now" (within one poll interval) and, for a proved
domain, every DOMAIN_PROOF_RECHECK_INTERVAL. Any number of workers may run: each check is
claimed first. Log lines name no domain or endorsement: only counts and outcomes.
"""

from __future__ import annotations

import logging
import os
import socket

from petition.db import Database
from petition.identity import proofs
from petition.identity.checks import Checker
from petition.polling import PollingWorker
from petition.randomness import random_hex
from petition.settings import Settings

log = logging.getLogger("petition.identity")


class DomainProofWorker(PollingWorker):
    name = "domain proof worker"
    log = log

    def __init__(self, db: Database, settings: Settings, *, checker: Checker | None = None) -> None:
        super().__init__(settings.worker_poll_interval)
        self.db = db
        self.settings = settings
        self.checker = checker or Checker(settings)
        self._id = f"proofs:{socket.gethostname()[:40]}:{os.getpid()}:{random_hex(4)}"

    @property
    def worker_id(self) -> str:
        return self._id

    async def run_once(self) -> bool:
        expired = await proofs.expire_challenges(self.db)
        if expired:
            log.info("domain proofs: %d challenges expired", expired)
        proof = await proofs.claim_due(self.db)
        if proof is None:
            return False
        result = await self.checker.check(proof["domain"], proof["challenge"], method=proof["method"])
        state = await proofs.record_check(
            self.db, proof=proof, result=result, recheck_interval=self.settings.domain_proof_recheck_interval
        )
        log.info("domain proof checked: %s (%s)", state, result.found.value)
        return True
