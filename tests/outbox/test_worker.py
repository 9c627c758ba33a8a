"""The outbox worker against a real SMTP server that goes down, defers (4xx) and refuses (5xx).

The web app runs without its in-process worker; each test drives `OutboxWorker.run_once`
itself, with a clock it moves forward instead of sleeping.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from petition.app import create_app
from petition.db import Database
from petition.outbox import queries
from petition.outbox.transports import make_transport
from petition.outbox.worker import OutboxWorker
from petition.settings import Settings
from tests.conftest import BASE_URL, Site, make_settings
from tests.support import db_count, db_rows

EMAIL = "office@connection-ev.example"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)

    def __call__(self) -> dt.datetime:
        # Never behind the real clock that stamps newly queued emails, however slow the machine.
        self.now = max(self.now, dt.datetime.now(dt.UTC))
        return self.now

    def advance(self, seconds: float) -> None:
        self.now = self() + dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(queries, "utcnow", fake)
    return fake


def run_passes(settings: Settings, passes: int = 1, workers: int = 1) -> list[int]:
    """Run `passes` rounds of `workers` side-by-side workers; how many emails each round handled."""

    async def go() -> list[int]:
        dbs = [Database(settings.database_url) for _ in range(workers)]
        for db in dbs:
            await db.connect()
        try:
            crew = [OutboxWorker(db, settings, make_transport(settings), batch=5) for db in dbs]
            handled = []
            for _ in range(passes):
                handled.append(sum(await asyncio.gather(*(w.run_once() for w in crew))))
            return handled
        finally:
            for db in dbs:
                await db.disconnect()

    return asyncio.run(go())


def outbox_rows(database_url: str) -> list[dict[str, Any]]:
    return db_rows(database_url, "SELECT * FROM outbox ORDER BY id")


def delay_of(row: dict[str, Any], clock: Clock) -> float:
    due = row["next_attempt_at"]
    if isinstance(due, str):
        due = dt.datetime.fromisoformat(due)
    if due.tzinfo is None:
        due = due.replace(tzinfo=dt.UTC)
    return (due - clock()).total_seconds()


@pytest.fixture
def make_site(database_url, tmp_path, smtp) -> Iterator[Any]:
    clients: list[TestClient] = []

    def build(**overrides: Any) -> tuple[Site, Settings]:
        settings = make_settings(database_url, tmp_path / "data", smtp, run_worker=False, **overrides)
        client = TestClient(create_app(settings), base_url=BASE_URL)
        client.__enter__()
        clients.append(client)
        return Site(client), settings

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def test_smtp_down_then_up_delivers_once_with_the_same_message_id(make_site, smtp, clock, database_url):
    site, settings = make_site()
    smtp.stop()
    response = site.endorse(contact_email=EMAIL)
    assert response.status_code == 303
    assert db_count(database_url, "endorsements") == 1
    [queued] = outbox_rows(database_url)
    assert queued["state"] == "queued"
    # The outbox holds no usable link: the worker signs it when it sends the email.
    assert "/confirm/{token}" in queued["context"]
    assert re.search(r"/confirm/(?!\{token\})", queued["context"]) is None

    assert run_passes(settings) == [1]
    [row] = outbox_rows(database_url)
    assert row["state"] == "queued"
    assert row["attempts"] == 0  # an unreachable relay does not use up attempts
    assert "unreachable" in row["last_error"]
    assert delay_of(row, clock) > 0
    assert run_passes(settings) == [0]  # not due yet

    smtp.start()
    clock.advance(3600)
    assert run_passes(settings) == [1]
    [sent] = outbox_rows(database_url)
    assert sent["state"] == "sent"
    assert sent["body_text"] == "" and sent["body_html"] == "" and sent["context"] is None
    assert sent["subject"] == smtp.messages[0]["Subject"]  # kept for the contact's data export
    [message] = smtp.messages
    assert message["Message-ID"] == queued["message_id"]
    assert message["To"] == EMAIL

    clock.advance(86400)
    assert run_passes(settings, passes=3) == [0, 0, 0]
    assert len(smtp.messages) == 1


def test_a_long_outage_backs_off_more_and_more_up_to_the_cap(make_site, smtp, clock, database_url):
    site, settings = make_site(outbox_max_backoff=600)
    smtp.stop()
    site.endorse(contact_email=EMAIL)
    delays = []
    for _ in range(8):
        run_passes(settings)
        [row] = outbox_rows(database_url)
        delays.append(delay_of(row, clock))
        clock.advance(delays[-1] + 1)
    assert delays[2] > delays[0] * 1.5
    assert max(delays) <= 600
    assert delays[-1] >= 600 * 0.9
    assert outbox_rows(database_url)[0]["state"] == "queued"
    smtp.start()
    run_passes(settings)
    assert len(smtp.messages) == 1


def test_a_4xx_answer_is_retried_with_growing_backoff(make_site, smtp, clock, database_url):
    site, settings = make_site()
    site.endorse(contact_email=EMAIL)
    [queued] = outbox_rows(database_url)
    smtp.sink.refuse_with = "451 4.3.0 Try again later"

    run_passes(settings)
    [row] = outbox_rows(database_url)
    assert (row["state"], row["attempts"]) == ("queued", 1)
    assert "451" in row["last_error"]
    assert queued["subject"] == "" and row["subject"]  # rendered by the worker; kept while it retries
    assert row["context"] is not None  # still to be sent
    first_delay = delay_of(row, clock)
    assert 25 <= first_delay <= 35

    clock.advance(first_delay + 1)
    run_passes(settings)
    [row] = outbox_rows(database_url)
    assert (row["state"], row["attempts"]) == ("queued", 2)
    assert delay_of(row, clock) > first_delay * 1.5

    smtp.sink.refuse_with = None
    clock.advance(3600)
    run_passes(settings)
    [row] = outbox_rows(database_url)
    assert row["state"] == "sent"
    [message] = smtp.messages
    assert message["Message-ID"] == queued["message_id"]


def test_backoff_is_capped(make_site, smtp, clock, database_url):
    site, settings = make_site(outbox_max_backoff=120, outbox_max_attempts=50)
    site.endorse(contact_email=EMAIL)
    smtp.sink.refuse_with = "452 4.2.2 Mailbox full"
    delays = []
    for _ in range(10):
        run_passes(settings)
        [row] = outbox_rows(database_url)
        delays.append(delay_of(row, clock))
        clock.advance(delays[-1] + 1)
    assert max(delays) <= 120
    assert min(delays[-3:]) >= 120 * 0.9
    for attempts in range(1, 40):
        assert queries.backoff_seconds(attempts, 3600) <= 3600


def test_too_many_4xx_answers_mark_the_email_failed(make_site, smtp, clock, database_url):
    site, settings = make_site(outbox_max_attempts=3)
    site.endorse(contact_email=EMAIL)
    smtp.sink.refuse_with = "450 4.2.0 Busy"
    for _ in range(3):
        run_passes(settings)
        clock.advance(3600)
    [row] = outbox_rows(database_url)
    assert (row["state"], row["attempts"]) == ("failed", 3)
    smtp.sink.refuse_with = None
    assert run_passes(settings) == [0]
    assert smtp.messages == []


def test_a_5xx_answer_marks_the_email_failed_and_it_is_not_retried(make_site, smtp, clock, database_url):
    site, settings = make_site()
    site.endorse(contact_email=EMAIL)
    smtp.sink.refuse_with = "554 5.7.1 Message rejected"
    assert run_passes(settings) == [1]
    [row] = outbox_rows(database_url)
    assert (row["state"], row["attempts"]) == ("failed", 1)
    assert "554" in row["last_error"]
    # Not sent again by itself. What it says stays (no signed link: those are signed when sent),
    # so organisers can queue it again; no rendered body is kept.
    assert row["context"] is not None and "{token}" in row["context"]
    assert row["body_text"] == "" and row["body_html"] == ""
    assert row["subject"] and "\n" not in row["subject"]
    smtp.sink.refuse_with = None
    clock.advance(7 * 86400)
    assert run_passes(settings, passes=2) == [0, 0]
    assert smtp.messages == []
    # The endorsement itself is kept: nothing is lost because its email bounced.
    assert db_rows(database_url, "SELECT state FROM endorsements")[0]["state"] == "pending"


def test_an_email_claimed_by_a_worker_that_died_is_sent_after_its_lease(make_site, smtp, clock, database_url):
    site, settings = make_site(outbox_lease_seconds=300)
    site.endorse(contact_email=EMAIL)

    async def claim_and_die() -> None:
        db = Database(settings.database_url)
        await db.connect()
        try:
            assert await queries.claim_next(db, worker_id="dead", lease_seconds=300) is not None
            assert await queries.claim_next(db, worker_id="dead", lease_seconds=300) is None
        finally:
            await db.disconnect()

    asyncio.run(claim_and_die())
    assert run_passes(settings) == [0]  # still leased
    clock.advance(301)
    assert run_passes(settings) == [1]
    assert len(smtp.messages) == 1
    assert outbox_rows(database_url)[0]["state"] == "sent"


def test_workers_side_by_side_send_each_email_once(make_site, smtp, clock, database_url):
    # Twelve submissions from one address: above the default per-IP burst limit.
    site, settings = make_site(rate_limit_ip_burst=100)
    addresses = [f"org{i}@example.org" for i in range(12)]
    for address in addresses:
        assert site.endorse(contact_email=address).status_code == 303
    run_passes(settings, passes=3, workers=3)
    assert sorted(m["To"] for m in smtp.messages) == sorted(addresses)
    assert {r["state"] for r in outbox_rows(database_url)} == {"sent"}


def test_an_unforeseen_error_is_counted_and_ends_failed_instead_of_looping(make_site, smtp, clock, database_url):
    site, settings = make_site(outbox_max_attempts=2)
    site.endorse(contact_email=EMAIL)

    class Broken:
        async def send(self, message, *, kind):
            raise RuntimeError("a bug in a transport")

    async def one_pass() -> int:
        db = Database(settings.database_url)
        await db.connect()
        try:
            return await OutboxWorker(db, settings, Broken()).run_once()
        finally:
            await db.disconnect()

    assert asyncio.run(one_pass()) == 1
    [row] = outbox_rows(database_url)
    assert (row["state"], row["attempts"]) == ("queued", 1)
    assert "RuntimeError" in row["last_error"]
    clock.advance(3600)
    assert asyncio.run(one_pass()) == 1
    [row] = outbox_rows(database_url)
    assert (row["state"], row["attempts"]) == ("failed", 2)


def test_an_email_queued_before_the_worker_rendered_emails_is_sent_as_it_was_stored(
    make_site, smtp, clock, database_url
):
    from tests.support import run_sql

    site, settings = make_site()
    site.endorse(contact_email=EMAIL)
    # As a row of the release before migration 0007 holds it: rendered, no context.
    run_sql(
        database_url,
        "UPDATE outbox SET context = NULL, subject = 'Stored subject', "
        "body_text = 'Stored text', body_html = '<p>Stored html</p>'",
    )
    assert run_passes(settings) == [1]
    [message] = smtp.messages
    assert message["Subject"] == "Stored subject"
    assert message.get_body(("plain",)).get_content().strip() == "Stored text"
    [row] = outbox_rows(database_url)
    assert (row["state"], row["subject"]) == ("sent", "Stored subject")


def test_a_message_that_cannot_be_built_is_marked_failed_at_once(make_site, smtp, clock, database_url):
    from tests.support import run_sql

    site, settings = make_site()
    site.endorse(contact_email=EMAIL)
    # A header value no relay may receive (a line break), as a corrupted row would hold.
    run_sql(database_url, "UPDATE outbox SET to_addr = 'broken@example.org\nBcc: someone@example.org'")
    assert run_passes(settings) == [1]
    [row] = outbox_rows(database_url)
    assert row["state"] == "failed" and "cannot be built" in row["last_error"]
    assert smtp.messages == []


def test_a_send_is_stopped_when_another_worker_took_the_claim_over(make_site, smtp, database_url):
    """The lease renewal finds another token in the row: the send is cancelled, nothing recorded."""
    site, settings = make_site(outbox_lease_seconds=0.6)
    site.endorse(contact_email=EMAIL)
    started = asyncio.Event()
    outcome: list[str] = []

    class SlowRelay:
        async def send(self, message, *, kind):
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                outcome.append("cancelled")
                raise
            outcome.append("sent")

    async def go() -> int:
        db = Database(settings.database_url)
        await db.connect()
        try:
            worker = OutboxWorker(db, settings, SlowRelay())
            sending = asyncio.create_task(worker.run_once())
            await started.wait()
            async with db.write():  # as a worker that took the claim over would
                await db.execute("UPDATE outbox SET claim_token = 'theirs', claimed_by = 'other'")
            return await asyncio.wait_for(sending, 10)
        finally:
            await db.disconnect()

    assert asyncio.run(go()) == 1
    assert outcome == ["cancelled"]
    [row] = outbox_rows(database_url)
    assert (row["state"], row["claim_token"], row["claimed_by"]) == ("sending", "theirs", "other")
