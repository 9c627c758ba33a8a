"""The German organiser delivers the German dossier to its parliamentarians and records an answer;
the public appeal page shows it. Real parts: the member list from CSV, a built and signed dossier,
the emails through a real SMTP server on loopback, Debian's Chromium."""

from __future__ import annotations

import datetime as dt
import hashlib
import urllib.request

import pytest

from petition.appeals.queries import DEMO_SLUG, get_appeal
from petition.delivery import addressees as lists
from petition.dossiers import jobs
from petition.organisers.passwords import hash_password
from petition.organisers.queries import create_organiser
from petition.organisers.roles import Role
from tests.factories import write_endorsements
from tests.journeys.conftest import axe_violations
from tests.journeys.test_browser_organiser_and_withdrawal import run
from tests.support import PROJECT_ROOT, links, text_body, wait_for_mail

PASSWORD = "ein langes Organisatorenpasswort"
MEMBERS = ("anna.beispiel@ep.example", "bernd.muster@ep.example", "clara.probe@ep.example")


def _setup(live_server) -> dict[str, object]:
    members = lists.parse_members((PROJECT_ROOT / "docs" / "addressees-ep.example.csv").read_bytes())

    async def setup(db):
        appeal = await get_appeal(db, slug=DEMO_SLUG)
        await write_endorsements(
            db,
            [
                {"organisation_name": "Friedensnetz Kassel", "city": "Kassel", "country": "DE"},
                {"organisation_name": "Connection e.V.", "city": "Offenbach", "country": "DE"},
                {"organisation_name": "Stille Gruppe", "country": "DE", "visibility": "anonymous"},
            ],
        )
        await lists.import_members(db, body="ep", members=members, source="example", source_date=dt.date.today())
        await create_organiser(db, email="ada@orga.example", password_hash=hash_password(PASSWORD), role=Role.ADMIN)
        dossier_id = await jobs.start_build(db, appeal_id=appeal["id"], country="DE", worker_id="journey")
        row = await jobs.get_dossier(db, dossier_id=dossier_id)
        built = await jobs.build(db, live_server.settings, dossier=row, worker_id="journey")
        return {"appeal": appeal["id"], "sha": hashlib.sha256(built.path.read_bytes()).hexdigest()}

    return run(live_server, setup)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_the_german_organiser_delivers_the_german_dossier_and_records_an_answer(
    live_server, page, smtp, shots, javascript
):
    ids = _setup(live_server)
    page.goto(f"{live_server.url}/admin/login?lang=de")
    page.fill("input[name=email]", "ada@orga.example")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    page.goto(f"{live_server.url}/admin/appeals/{ids['appeal']}/delivery/DE?lang=de")
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("h1").inner_text().startswith("Zustellung an Abgeordnete: Deutschland")
    letter = page.locator("#f-letter").input_value()
    assert letter.startswith("Sehr geehrte")  # the German template, ready to edit
    page.fill(
        "#f-letter", letter.replace("Mit freundlichen Grüßen,", "Mit freundlichen Grüßen,\nFriedenskooperative Nord")
    )
    if javascript:  # axe runs in the page
        assert axe_violations(page) == []
    shots("delivery-review")
    page.check("#f-confirm_send")
    with page.expect_navigation():
        page.click("button:has-text('Dossier senden')")
    assert "lang=de" in page.url and page.locator("[role=status]").count() >= 1
    emails = {address: wait_for_mail(smtp, address, timeout=30)[0] for address in MEMBERS[:2]}
    body = text_body(emails[MEMBERS[0]])
    assert "Friedenskooperative Nord" in body and "Stille Gruppe" not in body
    assert f"SHA-256 der Datei: {ids['sha']}" in body
    [dossier_link] = [u for u in links(emails[MEMBERS[0]], live_server.url) if "/dossiers/" in u]
    with urllib.request.urlopen(dossier_link, timeout=10) as response:  # noqa: S310 - loopback
        assert hashlib.sha256(response.read()).hexdigest() == ids["sha"]
    shots("delivery-sent")

    page.fill("#f-author", "Anna Beispiel MdEP (Grüne/EFA)")
    page.fill("#f-summary", "Sie bringt den Aufruf im Unterausschuss Menschenrechte ein.")
    page.fill("#f-document_url", "https://ep.example/antwort.pdf")
    with page.expect_navigation():
        page.click("form[action*='/answers'] button[type=submit]")
    assert "lang=de" in page.url
    shots("delivery-answer")

    page.goto(f"{live_server.url}/appeals/{DEMO_SLUG}?lang=de")
    section = page.locator("section.deliveries")
    text = section.inner_text()
    assert "Deutschland" in text and "zugestellt an 3 Stellen am" in text and "1 hat geantwortet" in text
    assert "Anna Beispiel MdEP (Grüne/EFA)" in text and "Unterausschuss Menschenrechte" in text
    assert "@ep.example" not in page.content()
    if javascript:
        assert axe_violations(page) == []
    shots("appeal-page-delivered")
