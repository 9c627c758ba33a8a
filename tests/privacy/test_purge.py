"""Unconfirmed endorsements and their emails are deleted after UNCONFIRMED_RETENTION_DAYS."""

from __future__ import annotations

import datetime as dt

from click.testing import CliRunner
from starlette.testclient import TestClient

from petition.app import create_app
from petition.cli import main
from tests.conftest import BASE_URL, TEST_SECRET, Site, make_settings
from tests.support import links, run_sql, wait_for, wait_for_mail


def age(database_url: str, email: str, days: int) -> None:
    then = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).replace(tzinfo=None)
    run_sql(
        database_url,
        "UPDATE endorsements SET created_at = :t, updated_at = :t WHERE email_canonical = :e",
        t=then,
        e=email,
    )
    run_sql(database_url, "UPDATE outbox SET created_at = :t WHERE to_addr = :e", t=then, e=email)
    run_sql(database_url, "UPDATE outbox SET sent_at = :t WHERE to_addr = :e AND sent_at IS NOT NULL", t=then, e=email)


def seed(site: Site, smtp, database_url: str) -> None:
    for email in ("old@pending.example", "new@pending.example", "old@confirmed.example"):
        site.endorse(contact_email=email, organisation_name="Org " + email.replace("@", " at "))
        wait_for_mail(smtp, email)
    site.confirm(links(smtp.sink.to("old@confirmed.example")[0], BASE_URL)[0])
    wait_for_mail(smtp, "old@confirmed.example", count=2)
    wait_for(lambda: not run_sql(database_url, "SELECT id FROM outbox WHERE state <> 'sent'"))
    age(database_url, "old@pending.example", 31)
    age(database_url, "old@confirmed.example", 31)


def emails(database_url: str) -> set[str]:
    return {r["contact_email"] for r in run_sql(database_url, "SELECT contact_email FROM endorsements")}


def test_purge_command_removes_old_unconfirmed_endorsements_and_their_emails(
    site, smtp, database_url, tmp_path, monkeypatch
):
    seed(site, smtp, database_url)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main,
        ["purge"],
        env={
            "DATABASE_URL": database_url,
            "SECRET_KEY": TEST_SECRET,
            "DATA_DIR": str(tmp_path / "data"),
            "UNCONFIRMED_RETENTION_DAYS": "30",
        },
    )
    assert result.exit_code == 0, result.output
    assert "purged 1 unconfirmed endorsement(s)" in result.output
    assert emails(database_url) == {"new@pending.example", "old@confirmed.example"}
    outbox = run_sql(database_url, "SELECT to_addr, kind FROM outbox")
    # The old pending one's email is gone; so are the old delivered emails of the confirmed one.
    assert "old@pending.example" not in str(outbox)
    assert "old@confirmed.example" not in str(outbox)
    assert [r["to_addr"] for r in outbox] == ["new@pending.example"]
    # The confirmed endorsement itself stays, and is still listed.
    items = site.client.get("/api/appeals/protect-deserters/endorsements").json()["items"]
    assert [i["organisation_name"] for i in items] == ["Org old at confirmed.example"]


def test_worker_purges_periodically(site, smtp, database_url, tmp_path):
    seed(site, smtp, database_url)
    settings = make_settings(database_url, tmp_path / "data2", smtp, purge_interval=0.2)
    with TestClient(create_app(settings), base_url=BASE_URL):
        wait_for(lambda: "old@pending.example" not in emails(database_url))
    assert emails(database_url) == {"new@pending.example", "old@confirmed.example"}


def purge(database_url: str, retention_days: int = 30):
    """One purge run, as the worker's housekeeping makes it."""
    import asyncio

    from petition.db import Database
    from petition.privacy.queries import purge_unconfirmed

    async def go():
        db = Database(database_url)
        await db.connect()
        try:
            return await purge_unconfirmed(db, retention_days=retention_days)
        finally:
            await db.disconnect()

    return asyncio.run(go())


def test_unconfirmed_submissions_held_back_by_a_limit_are_purged_too(make_site, database_url):
    site = make_site(rate_limit_ip_burst=0)
    site.endorse(contact_email="held@bot.example")
    assert run_sql(database_url, "SELECT state, hold_reason FROM endorsements") == [
        {"state": "pending", "hold_reason": "form.ip"}
    ]
    # Emailed as usual (a record whose email never left is kept: see below).
    wait_for(lambda: run_sql(database_url, "SELECT state FROM outbox") == [{"state": "sent"}])
    age(database_url, "held@bot.example", 40)
    assert purge(database_url).endorsements == 1
    assert emails(database_url) == set()


def test_held_endorsements_confirmed_by_their_mailbox_are_kept_for_the_organisers(make_site, smtp, database_url):
    from tests.conftest import BASE_URL
    from tests.support import links, wait_for_mail

    site = make_site(rate_limit_ip_burst=0)
    site.endorse(contact_email="real@held-group.example")
    [link] = links(wait_for_mail(smtp, "real@held-group.example")[0], BASE_URL)
    site.confirm(link)
    age(database_url, "real@held-group.example", 40)
    assert purge(database_url).endorsements == 0
    assert run_sql(database_url, "SELECT state FROM endorsements") == [{"state": "quarantined"}]


def test_an_unconfirmed_endorsement_whose_email_never_left_is_kept(make_site, smtp, database_url):
    """Its mailbox never had the chance to confirm: kept while the email waits, is being sent or
    failed (organisers may queue it again), and for the retention period once it left."""
    site = make_site()
    addresses = ["sent@unsent.example", "queued@unsent.example", "sending@unsent.example", "failed@unsent.example"]
    for address in addresses:
        site.endorse(contact_email=address, organisation_name="Org " + address)
        wait_for_mail(smtp, address)
    wait_for(lambda: not run_sql(database_url, "SELECT id FROM outbox WHERE state <> 'sent'"))
    for address in addresses:
        age(database_url, address, 40)
    for state in ("queued", "sending", "failed"):
        run_sql(
            database_url,
            "UPDATE outbox SET state = :s, sent_at = NULL WHERE to_addr = :e",
            s=state,
            e=f"{state}@unsent.example",
        )
    assert purge(database_url).endorsements == 1
    assert emails(database_url) == {"queued@unsent.example", "sending@unsent.example", "failed@unsent.example"}
    # The failed email stays with its endorsement, to be queued again.
    assert run_sql(database_url, "SELECT state FROM outbox WHERE to_addr = 'failed@unsent.example'") == [
        {"state": "failed"}
    ]
    # Sent again (by an organiser's re-queue) long after the submission: the mailbox gets the
    # retention period from then on.
    run_sql(
        database_url,
        "UPDATE outbox SET state = 'sent', sent_at = :t WHERE to_addr = 'failed@unsent.example'",
        t=dt.datetime.now(dt.UTC).replace(tzinfo=None),
    )
    assert purge(database_url).endorsements == 0
    assert "failed@unsent.example" in emails(database_url)
