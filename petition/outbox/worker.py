"""The outbox worker: claims due emails, sends them, retries or gives up as the relay says."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from email.message import EmailMessage

from petition.db import Database
from petition.outbox import queries
from petition.outbox.messages import build_message
from petition.outbox.transports import PermanentFailure, TemporaryFailure, Transport
from petition.polling import PollingWorker
from petition.settings import Settings
from petition.tokens import Tokens

log = logging.getLogger("petition.outbox")


class OutboxWorker(PollingWorker):
    name = "outbox worker"
    log = log

    def __init__(self, db: Database, settings: Settings, transport: Transport, *, batch: int = 20) -> None:
        from petition.templating import make_environment

        super().__init__(settings.worker_poll_interval)
        self.db = db
        self.env = make_environment()
        self.tokens = Tokens(str(settings.secret_key))
        self.settings = settings
        self.transport = transport
        self.batch = batch
        self._id = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @property
    def worker_id(self) -> str:
        return self._id

    async def run_once(self) -> int:
        """Send what is due now; returns how many emails were handled."""
        rows = await queries.claim_due(
            self.db,
            worker_id=self.worker_id,
            limit=self.batch,
            lease_seconds=self.settings.outbox_lease_seconds,
        )
        for row in rows:
            await self._deliver(row)
        return len(rows)

    def _build(self, row: queries.Row) -> EmailMessage:
        """The email, rendered from its templates (PermanentFailure: this row can never be sent)."""
        try:
            return build_message(row, self.settings, self.env, self.tokens)
        except Exception as exc:  # noqa: BLE001 - a broken row or a template that no longer fits it
            raise PermanentFailure(f"the message cannot be built ({type(exc).__name__})") from exc

    async def _send(self, message: EmailMessage, row: queries.Row) -> None:
        try:
            await self.transport.send(message, kind=row["kind"])
        except (PermanentFailure, TemporaryFailure):
            raise
        except Exception as exc:  # noqa: BLE001 - unforeseen: counted, so it cannot loop forever
            raise TemporaryFailure(f"unexpected error ({type(exc).__name__})") from exc

    async def _deliver(self, row: queries.Row) -> None:
        # The subject is stored however the try ends: the contact's data export shows it.
        subject: str | None = None
        try:
            message = self._build(row)
            subject = str(message["Subject"])
            await self._send(message, row)
        except PermanentFailure as exc:
            log.warning("outbox %s (%s) failed permanently: %s", row["id"], row["kind"], exc)
            await queries.mark_failed(
                self.db, outbox_id=row["id"], worker_id=self.worker_id, error=str(exc), subject=subject
            )
        except TemporaryFailure as exc:
            attempts = row["attempts"]
            if not exc.counts:
                await queries.uncount_attempt(self.db, outbox_id=row["id"])
                attempts -= 1
            if exc.counts and attempts >= self.settings.outbox_max_attempts:
                log.warning("outbox %s (%s) gave up after %d attempts: %s", row["id"], row["kind"], attempts, exc)
                await queries.mark_failed(
                    self.db, outbox_id=row["id"], worker_id=self.worker_id, error=str(exc), subject=subject
                )
                return
            cap = self.settings.outbox_max_backoff
            if exc.counts:
                delay = queries.backoff_seconds(max(1, attempts), cap)
            else:
                delay = queries.outage_backoff_seconds(row["created_at"], cap)
            log.info("outbox %s (%s) will be retried in %.0f s: %s", row["id"], row["kind"], delay, exc)
            await queries.mark_retry(
                self.db, outbox_id=row["id"], worker_id=self.worker_id, delay=delay, error=str(exc), subject=subject
            )
        else:
            assert subject is not None
            await queries.mark_sent(self.db, outbox_id=row["id"], worker_id=self.worker_id, subject=subject)
            log.info("outbox %s (%s) sent", row["id"], row["kind"])
