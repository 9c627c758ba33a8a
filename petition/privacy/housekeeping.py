"""The purge run periodically by every worker (in-process and `petition worker`): unconfirmed and
withdrawn endorsements past the retention period, old emails, expired rate-limit counters."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from petition.appeals.queries import close_past_deadline
from petition.audit.actions import AuditAction
from petition.audit.queries import record_many
from petition.db import Database
from petition.privacy.queries import purge_unconfirmed
from petition.settings import Settings

log = logging.getLogger("petition.privacy")


class Housekeeper:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def close_appeals_past_deadline(self) -> list[int]:
        """Store `closed` for the appeals past their deadline (they read as closed already), audited."""
        async with self.db.write():
            closed = await close_past_deadline(self.db)
            if closed:
                await record_many(
                    self.db,
                    organiser_id=None,
                    action=AuditAction.APPEAL_STATUS,
                    target_type="appeal",
                    target_ids=closed,
                    detail="-> closed (deadline)",
                )
        return closed

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                closed = await self.close_appeals_past_deadline()
            except Exception:  # the database may be restarting: try again next time
                log.exception("closing appeals past their deadline failed; retrying later")
            else:
                if closed:
                    log.info("closed %d appeal(s) past their deadline", len(closed))
            try:
                result = await purge_unconfirmed(self.db, retention_days=self.settings.unconfirmed_retention_days)
            except Exception:  # the database may be restarting: try again next time
                log.exception("purge failed; retrying later")
            else:
                if result.endorsements or result.withdrawn or result.submissions or result.emails:
                    log.info(
                        "purged %d unconfirmed and %d withdrawn endorsement(s), %d unconfirmed later "
                        "submission(s) and %d email(s)",
                        result.endorsements,
                        result.withdrawn,
                        result.submissions,
                        result.emails,
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.purge_interval)
