"""Ids reserved from a sequence that moved back under a running process (a restore while it ran)
clash with stored rows: they are dropped and fetched anew, and the submission is stored."""

from __future__ import annotations

import pytest

from tests.support import db_rows


@pytest.fixture
def postgres_only(database_url: str) -> None:
    if not database_url.startswith("postgresql://"):
        pytest.skip("ids are reserved from a sequence on PostgreSQL only")


def test_a_submission_after_the_sequence_moved_back_is_stored(postgres_only, make_site, database_url):
    first = make_site()
    for i in range(3):
        page = first.endorse(contact_email=f"office@group{i}.example", organisation_name=f"Group {i}")
        assert page.status_code == 303
    # A restore while petition ran: the sequence is back below the stored ids.
    db_rows(database_url, "SELECT setval(pg_get_serial_sequence('endorsements', 'id'), 1)")

    later = make_site(ip="203.0.113.8")  # another process: its first ids come from the moved-back sequence
    page = later.endorse(contact_email="office@later.example", organisation_name="Later")
    assert page.status_code == 303
    stored = db_rows(
        database_url,
        "SELECT e.id, o.kind FROM endorsements e JOIN outbox o ON o.endorsement_id = e.id "
        "WHERE e.email_canonical = 'office@later.example'",
    )
    assert [row["kind"] for row in stored] == ["confirm"]
    (top,) = db_rows(database_url, "SELECT max(id) AS top FROM endorsements")
    assert stored[0]["id"] == top["top"] > 3
    # The sequence is past the table again: the next process's ids are fresh too.
    (seq,) = db_rows(database_url, "SELECT last_value FROM endorsements_id_seq")
    assert seq["last_value"] >= top["top"]
    ready = later.client.get("/readyz").json()
    assert ready["checks"]["intake"]["id_clash"]["table"] == "endorsements"


def test_every_one_of_a_group_after_the_sequence_moved_back_is_stored(postgres_only, make_site, database_url):
    import asyncio

    from petition.appeals.queries import DEMO_SLUG, current_text, ensure_demo_appeal, get_appeal
    from petition.db import Database
    from petition.endorsements.intake import Intake
    from petition.endorsements.lifecycle import SubmitOutcome
    from tests.endorsements.test_intake import data_of
    from tests.support import valid_form

    first = make_site()
    for i in range(5):
        assert first.endorse(contact_email=f"office@first{i}.example", organisation_name=f"F{i}").status_code == 303
    db_rows(database_url, "SELECT setval(pg_get_serial_sequence('endorsements', 'id'), 2)")
    svc = first.client.app.state.services

    async def go() -> list[object]:
        db = Database(database_url)
        await db.connect()
        try:
            await ensure_demo_appeal(db)
            appeal = dict(await get_appeal(db, slug=DEMO_SLUG))
            text = dict(await current_text(db, appeal=appeal, language="en"))
            intake = Intake(db, svc.settings, svc.mailer)
            forms = [valid_form(contact_email=f"g{i}@group{i}.example", organisation_name=f"G{i}") for i in range(20)]
            return await asyncio.gather(
                *(
                    intake.take(appeal=appeal, text=text, data=data_of(f), language="en", ip=f"198.51.100.{i}")
                    for i, f in enumerate(forms)
                ),
                return_exceptions=True,
            )
        finally:
            await db.disconnect()

    assert asyncio.run(go()) == [SubmitOutcome.NEW] * 20
    assert db_rows(database_url, "SELECT count(*) AS n FROM endorsements")[0]["n"] == 25
