"""The outbox under a misbehaving relay: retry what may pass, give up on what never will."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from starlette.testclient import TestClient

from petition.app import create_app
from petition.db import Database
from petition.outbox.messages import Mailer
from petition.outbox.queries import backoff_seconds
from petition.outbox.transports import SMTPTransport
from petition.outbox.worker import OutboxWorker
from tests.conftest import BASE_URL, make_settings
from tests.organisers.support import login_as
from tests.support import drain_outbox, run_sql, wait_for


def queue(database_url: str, settings, addresses: list[str]) -> None:
    async def go() -> None:
        db = Database(database_url)
        await db.connect()
        mailer = Mailer(settings)
        try:
            async with db.write():
                for address in addresses:
                    await mailer.queue(
                        db,
                        name="already_endorsed",
                        to=address,
                        language="en",
                        context={"appeal_url": BASE_URL + "/", "title": "Appeal"},
                    )
        finally:
            await db.disconnect()

    asyncio.run(go())


def rows(database_url: str) -> list[dict]:
    found = run_sql(
        database_url, "SELECT to_addr, state, attempts, last_error, next_attempt_at, claimed_by FROM outbox ORDER BY id"
    )
    for row in found:  # SQLite hands raw SQL timestamps back as text
        if isinstance(row["next_attempt_at"], str):
            row["next_attempt_at"] = dt.datetime.fromisoformat(row["next_attempt_at"])
    return found


def test_permanent_refusal_fails_at_once_and_temporary_is_retried(database_url, tmp_path, smtp):
    settings = make_settings(database_url, tmp_path / "data", smtp)
    queue(database_url, settings, ["gone@relay.example"])
    smtp.sink.refuse_with = "550 5.1.1 mailbox unavailable"
    with TestClient(create_app(settings), base_url=BASE_URL):
        wait_for(lambda: rows(database_url)[0]["state"] == "failed")
    [row] = rows(database_url)
    assert row["attempts"] == 1 and "550" in row["last_error"]

    run_sql(database_url, "DELETE FROM outbox")
    queue(database_url, settings, ["later@relay.example"])
    smtp.sink.refuse_with = "451 4.3.0 try again later"
    with TestClient(create_app(settings), base_url=BASE_URL):
        wait_for(lambda: rows(database_url)[0]["attempts"] >= 1 and rows(database_url)[0]["state"] == "queued")
    [row] = rows(database_url)
    assert "451" in row["last_error"]
    # Not before the backoff: the next attempt lies in the future.
    assert row["next_attempt_at"] > dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=20)
    assert smtp.messages == []


def test_too_many_temporary_refusals_give_up(database_url, tmp_path, smtp):
    settings = make_settings(database_url, tmp_path / "data", smtp, outbox_max_attempts=3, outbox_max_backoff=0.05)
    queue(database_url, settings, ["stubborn@relay.example"])
    smtp.sink.refuse_with = "452 4.2.2 mailbox full"
    with TestClient(create_app(settings), base_url=BASE_URL):
        wait_for(lambda: rows(database_url)[0]["state"] == "failed")
    assert rows(database_url)[0]["attempts"] == 3


def test_backoff_grows_and_is_capped():
    assert 27 <= backoff_seconds(1, 3600) <= 33
    assert backoff_seconds(3, 3600) > backoff_seconds(1, 3600)
    for attempts in (10, 20, 100, 10_000):
        assert 540 <= backoff_seconds(attempts, 600) <= 600


def test_worker_applies_the_cap(database_url, tmp_path, smtp):
    settings = make_settings(database_url, tmp_path / "data", smtp, outbox_max_backoff=5, outbox_max_attempts=100)
    queue(database_url, settings, ["capped@relay.example"])
    run_sql(database_url, "UPDATE outbox SET attempts = 40")
    smtp.sink.refuse_with = "421 4.7.0 slow down"

    async def go() -> None:
        db = Database(database_url)
        await db.connect()
        try:
            await OutboxWorker(db, settings, SMTPTransport(settings)).run_once()
        finally:
            await db.disconnect()

    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    asyncio.run(go())
    [row] = rows(database_url)
    assert row["state"] == "queued" and row["attempts"] == 41
    assert row["next_attempt_at"] <= before + dt.timedelta(seconds=5 + 1)


def test_relay_down_for_a_while_then_everything_is_delivered_once(database_url, tmp_path, smtp):
    settings = make_settings(database_url, tmp_path / "data", smtp, outbox_max_backoff=0.3, outbox_max_attempts=2)
    smtp.stop()
    addresses = [f"patient{i}@relay.example" for i in range(10)]
    queue(database_url, settings, addresses)
    with TestClient(create_app(settings), base_url=BASE_URL):
        # Three tries of each fail while the relay is away (each puts the next one later). They do
        # not use up attempts: two would, and the email would be given up.
        for _ in range(3):
            before = {r["to_addr"]: r["next_attempt_at"] for r in rows(database_url)}
            wait_for(
                lambda before=before: all(
                    r["last_error"] and r["next_attempt_at"] > before[r["to_addr"]] for r in rows(database_url)
                )
            )
        assert {r["state"] for r in rows(database_url)} <= {"queued", "sending"}
        assert {r["attempts"] for r in rows(database_url) if r["state"] == "queued"} <= {0}
        smtp.start()
        wait_for(lambda: len(smtp.messages) >= 10, timeout=30)
        wait_for(lambda: {r["state"] for r in rows(database_url)} == {"sent"})
    assert sorted(m["To"] for m in smtp.messages) == sorted(addresses)
    assert len({m["Message-ID"] for m in smtp.messages}) == 10


def test_a_claim_left_by_a_dead_worker_is_taken_over_after_the_lease(database_url, tmp_path, smtp):
    settings = make_settings(database_url, tmp_path / "data", smtp, outbox_lease_seconds=60)
    queue(database_url, settings, ["orphan@relay.example", "fresh@relay.example"])
    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).replace(tzinfo=None)
    just_now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    # One row claimed by a worker that died ten minutes ago, one claimed by a live worker just now.
    run_sql(
        database_url,
        "UPDATE outbox SET state = 'sending', attempts = 1, claimed_by = 'dead:1', "
        "claimed_at = :t WHERE to_addr = 'orphan@relay.example'",
        t=long_ago,
    )
    run_sql(
        database_url,
        "UPDATE outbox SET state = 'sending', attempts = 1, claimed_by = 'alive:2', "
        "claimed_at = :t WHERE to_addr = 'fresh@relay.example'",
        t=just_now,
    )
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        wait_for(lambda: smtp.sink.to("orphan@relay.example"))
        # The live worker's claim is not due: a pass of another worker finds nothing to send.
        worker = OutboxWorker(client.app.state.services.db, settings, SMTPTransport(settings))
        assert client.portal.call(worker.run_once) == 0
    assert smtp.sink.to("fresh@relay.example") == []
    by_addr = {r["to_addr"]: r for r in rows(database_url)}
    assert by_addr["orphan@relay.example"]["state"] == "sent"
    assert by_addr["orphan@relay.example"]["claimed_by"] != "dead:1"
    assert by_addr["fresh@relay.example"]["claimed_by"] == "alive:2"


@pytest.mark.parametrize("refusal", ["550 5.7.1 rejected", "554 5.0.0 transaction failed"])
def test_permanent_codes(database_url, tmp_path, smtp, refusal):
    """A 5xx ends the email at its first try: never tried again, and organisers see it failed."""
    settings = make_settings(database_url, tmp_path / "data", smtp)
    queue(database_url, settings, ["perm@relay.example"])
    smtp.sink.refuse_with = refusal
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        wait_for(lambda: rows(database_url)[0]["state"] == "failed")
        drain_outbox(client)  # nothing is due any more
        [row] = rows(database_url)
        code = refusal.split()[0]
        assert (row["attempts"], row["last_error"]) == (1, f"refused ({code})")
        assert smtp.messages == []
        login_as(client, "moderator")
        dashboard = client.get("/admin/").text
    # The outbox panel counts it as failed, marked as an error.
    assert '<dt>failed</dt><dd class="error">1</dd>' in dashboard
    assert "<dt>queued</dt><dd>0</dd>" in dashboard and "<dt>sending</dt><dd>0</dd>" in dashboard
