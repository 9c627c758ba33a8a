"""The outbox worker: claims due emails one at a time, sends them, retries or gives up as the relay says.

What is guaranteed, and what is not. A worker hands an email to the relay only while it holds
the email's claim (its token in the row, state `sending`, checked just before), renews the
lease while the relay takes its time, and records the result only if the claim is still its
own. So two live workers never send one email side by side, however slow the relay, and a
database failure leaves no other email claimed. A send whose result could not be recorded is
kept in memory and recorded before anything else once the database answers, so it is not sent
again. What remains is SMTP's own at-least-once boundary: a relay that accepts the message
after the worker gave up on it (its lease ran out while the database was unreachable from this
worker alone, or the process died between the relay's answer and the recording) gets it once
more from the worker that takes the claim over. Its Message-ID, fixed when queued, is the same
both times: a relay or mail client that deduplicates by Message-ID shows it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage

from petition.db import Database
from petition.outbox import queries
from petition.outbox.messages import build_message
from petition.outbox.transports import PermanentFailure, TemporaryFailure, Transport
from petition.polling import PollingWorker
from petition.settings import Settings
from petition.tokens import Tokens

log = logging.getLogger("petition.outbox")


class ClaimLost(Exception):
    """This worker can no longer show it holds the email's claim: it must not send or record it."""

    def __init__(self, message: str, *, taken_over: bool) -> None:
        super().__init__(message)
        #: False: the database could not be reached to renew it (the claim may still be ours).
        self.taken_over = taken_over


@dataclass(frozen=True)
class Unrecorded:
    """A result the database did not take (it was unreachable): written before anything else."""

    outbox_id: int
    what: str
    write: Callable[[], Awaitable[bool]]


class OutboxWorker(PollingWorker):
    name = "outbox worker"
    log = log

    def __init__(self, db: Database, settings: Settings, transport: Transport, *, batch: int = 20) -> None:
        from petition.templating import make_environment

        super().__init__(settings.worker_poll_interval)
        self.db = db
        self.env = make_environment(settings.operator)
        self.tokens = Tokens(str(settings.secret_key))
        self.settings = settings
        self.transport = transport
        self.batch = batch
        self._id = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._unrecorded: list[Unrecorded] = []

    @property
    def worker_id(self) -> str:
        return self._id

    async def run_once(self) -> int:
        """Send what is due now, one claim at a time, up to the batch; returns how many emails were handled."""
        await self._record_unrecorded()
        handled = 0
        while handled < self.batch:
            row = await queries.claim_next(
                self.db, worker_id=self.worker_id, lease_seconds=self.settings.outbox_lease_seconds
            )
            if row is None:
                break
            handled += 1
            await self._deliver(row)
        return handled

    async def run(self) -> None:
        await super().run()
        if self._unrecorded:
            try:
                await self._record_unrecorded()
            except Exception:  # noqa: BLE001 - stopping: say what is lost
                log.error(
                    "outbox worker stopped with %d results the database did not take: those emails "
                    "are sent again once their lease runs out",
                    len(self._unrecorded),
                )

    async def _record_unrecorded(self) -> None:
        while self._unrecorded:
            pending = self._unrecorded[0]
            held = await pending.write()  # raises while the database is still away: tried again next pass
            self._unrecorded.pop(0)
            log.info("outbox %s: %s recorded after the database came back", pending.outbox_id, pending.what)
            if not held:
                log.warning(
                    "outbox %s: its claim was taken over before %s could be recorded", pending.outbox_id, pending.what
                )

    async def _record(self, outbox_id: int, what: str, write: Callable[[], Awaitable[bool]]) -> bool:
        """Write a result while the claim is ours; kept in memory when the database fails."""
        try:
            held = await write()
        except Exception:
            self._unrecorded.append(Unrecorded(outbox_id, what, write))
            log.warning("outbox %s: %s could not be recorded; kept until the database answers", outbox_id, what)
            raise
        if not held:
            # Another worker took the claim over after its lease ran out: the result is its now.
            log.warning("outbox %s: the claim was lost before %s could be recorded", outbox_id, what)
        return held

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

    async def _check_claim(self, outbox_id: int, token: str) -> float:
        """Just before the relay gets it: the claim is still ours, and its lease starts again
        (no later than the monotonic time returned)."""
        started = time.monotonic()
        try:
            held = await queries.renew_claim(self.db, outbox_id=outbox_id, token=token)
        except Exception:
            # Not handed over: back to the queue as soon as the database answers.
            self._unrecorded.append(
                Unrecorded(
                    outbox_id, "its release", lambda: queries.release_claim(self.db, outbox_id=outbox_id, token=token)
                )
            )
            raise
        if not held:
            raise ClaimLost("taken over before it was sent", taken_over=True)
        return started

    async def _send_holding_claim(self, message: EmailMessage, row: queries.Row, token: str, renewed: float) -> None:
        """Send while renewing the claim's lease; stop the send when the claim cannot be kept.

        The lease is renewed every third of its length. When a renewal finds the claim gone, or
        none has succeeded for most of the lease (this worker cannot reach the database, and
        another may take the claim over once the lease runs out), the send is cancelled: a
        relay that has not yet taken the whole message discards it.
        """
        lease = self.settings.outbox_lease_seconds
        outbox_id = row["id"]
        lost = asyncio.Event()
        done = asyncio.Event()

        async def keep_claim() -> None:
            nonlocal renewed
            while not done.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), lease / 3)
                    return
                started = time.monotonic()
                try:
                    held = await queries.renew_claim(self.db, outbox_id=outbox_id, token=token)
                except Exception as exc:  # noqa: BLE001 - the database is away: the deadline decides
                    log.warning("outbox %s: its lease could not be renewed (%s)", outbox_id, type(exc).__name__)
                    continue
                if not held:
                    lost.set()
                    return
                renewed = started

        send = asyncio.create_task(self._send(message, row))
        keeper = asyncio.create_task(keep_claim())
        lost_wait = asyncio.create_task(lost.wait())
        try:
            while not send.done():
                # Well inside the lease as another worker counts it (from before our last renewal).
                left = renewed + lease * 0.8 - time.monotonic()
                if lost.is_set() or left <= 0:
                    send.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await send
                    if lost.is_set():
                        raise ClaimLost("the claim was taken over", taken_over=True)
                    raise ClaimLost("the lease could not be renewed", taken_over=False)
                await asyncio.wait({send, lost_wait}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        finally:
            done.set()
            lost_wait.cancel()
            try:
                await asyncio.wait_for(keeper, 5)
            except (TimeoutError, asyncio.CancelledError):
                pass
        send.result()

    async def _deliver(self, row: queries.Row) -> None:
        outbox_id: int = row["id"]
        token: str = row["claim_token"]
        # The subject is stored however the try ends: the contact's data export shows it.
        subject: str | None = None
        try:
            message = self._build(row)
            subject = str(message["Subject"])
            renewed = await self._check_claim(outbox_id, token)
            await self._send_holding_claim(message, row, token, renewed)
        except ClaimLost as exc:
            log.warning("outbox %s (%s) not sent by this worker: %s", outbox_id, row["kind"], exc)
            if exc.taken_over:
                return  # the worker that holds it now sends it
            # Released if it is still ours (the database was away, not another worker): due again.
            await self._record(
                outbox_id, "its release", lambda: queries.release_claim(self.db, outbox_id=outbox_id, token=token)
            )
        except PermanentFailure as exc:
            log.warning("outbox %s (%s) failed permanently: %s", outbox_id, row["kind"], exc)
            await self._failed(outbox_id, token, str(exc), subject)
        except TemporaryFailure as exc:
            attempts = row["attempts"] if exc.counts else row["attempts"] - 1
            if exc.counts and attempts >= self.settings.outbox_max_attempts:
                log.warning("outbox %s (%s) gave up after %d attempts: %s", outbox_id, row["kind"], attempts, exc)
                await self._failed(outbox_id, token, str(exc), subject)
                return
            cap = self.settings.outbox_max_backoff
            if exc.counts:
                delay = queries.backoff_seconds(max(1, attempts), cap)
            else:
                delay = queries.outage_backoff_seconds(row["created_at"], cap)
            log.info("outbox %s (%s) will be retried in %.0f s: %s", outbox_id, row["kind"], delay, exc)
            error, counts = str(exc), exc.counts
            await self._record(
                outbox_id,
                "its retry",
                lambda: queries.mark_retry(
                    self.db,
                    outbox_id=outbox_id,
                    token=token,
                    delay=delay,
                    error=error,
                    subject=subject,
                    counts=counts,
                ),
            )
        else:
            sent_subject = str(subject)
            # Handed to the relay: from here on it must never be sent again, whatever the database does.
            if await self._record(
                outbox_id,
                "its delivery",
                lambda: queries.mark_sent(self.db, outbox_id=outbox_id, token=token, subject=sent_subject),
            ):
                log.info("outbox %s (%s) sent", outbox_id, row["kind"])

    async def _failed(self, outbox_id: int, token: str, error: str, subject: str | None) -> None:
        await self._record(
            outbox_id,
            "its failure",
            lambda: queries.mark_failed(self.db, outbox_id=outbox_id, token=token, error=error, subject=subject),
        )
