"""An organiser who chose German, in an English browser, moderates and closes an appeal: every page
stays German, with and without JavaScript; the German organiser pages have no axe violation."""

from __future__ import annotations

import pytest

from petition.appeals.queries import create_appeal, save_text
from petition.appeals.states import AppealStatus, Moderation
from petition.organisers.passwords import hash_password
from petition.organisers.queries import create_organiser
from petition.organisers.roles import Role
from tests.factories import write_endorsements
from tests.journeys.conftest import axe_violations
from tests.journeys.test_browser_organiser_and_withdrawal import run

PASSWORD = "ein langes Organisatorenpasswort"


def _setup(live_server) -> dict[str, int]:
    async def setup(db):
        appeal_id = await create_appeal(db, slug="schutz", moderation=Moderation.PRE, status=AppealStatus.OPEN)
        await save_text(
            db,
            appeal_id=appeal_id,
            language="de",
            title="Schutz für Deserteure",
            addressees="Die Mitglieder des Bundestages",
            body="Wir bitten Sie, sie zu **schützen**.",
        )
        await save_text(
            db,
            appeal_id=appeal_id,
            language="en",
            title="Protect deserters",
            addressees="The members of the Bundestag",
            body="We ask you to **protect** them.",
        )
        ids = await write_endorsements(
            db,
            [
                {"organisation_name": "Friedensnetz Kassel", "city": "Kassel"},
                {
                    "organisation_name": "جمعية السلام",
                    "city": "תל אביב",
                    "comment": "نحن نؤيد هذا النداء.",
                    "visibility": "anonymous",
                },
            ],
            appeal=appeal_id,
        )
        await create_organiser(db, email="ada@orga.example", password_hash=hash_password(PASSWORD), role=Role.ADMIN)
        return {"appeal": appeal_id, "first": ids[0], "rtl": ids[1]}

    return run(live_server, setup)


def _is_german(page) -> None:
    assert page.locator("html").get_attribute("lang") == "de", page.url
    assert "lang=de" in page.url, page.url


def test_an_organiser_in_german_stays_in_german(live_server, page, shots, javascript):
    ids = _setup(live_server)
    page.goto(f"{live_server.url}/admin/moderation?lang=de")
    _is_german(page)
    page.fill("input[name=email]", "ada@orga.example")
    page.fill("input[name=password]", "nicht das Passwort")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    _is_german(page)
    assert page.locator(".error-summary").inner_text().strip() == "E-Mail-Adresse oder Passwort stimmen nicht."
    shots("organiser-german-failed-login")

    page.fill("input[name=email]", "ada@orga.example")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    _is_german(page)
    assert "/admin/moderation" in page.url
    page.check(f"input[name=ids][value='{ids['first']}']")
    with page.expect_navigation():
        page.click("button[name=decision][value=approve]")
    _is_german(page)
    assert page.locator("[role=status]").inner_text().strip() == "1 Unterstützung freigegeben."
    shots("approved")

    page.goto(f"{live_server.url}/admin/appeals/{ids['appeal']}?lang=de")
    with page.expect_navigation():
        page.click("button[name=status][value=paused]")
    _is_german(page)
    assert page.locator("main p strong").first.inner_text() == "pausiert"
    # Closing without the tick (the box is not required: the server asks) keeps the appeal open.
    with page.expect_navigation():
        page.click("form.confirm-close button[type=submit]")
    _is_german(page)
    assert page.locator(".error-summary").count() == 1
    shots("closing-asks-first")
    page.check("#f-confirm_close")
    with page.expect_navigation():
        page.click("form.confirm-close button[type=submit]")
    _is_german(page)
    assert page.locator("main p strong").first.inner_text() == "geschlossen"
    shots("closed")


ADMIN_PAGES = [
    "/admin/login?lang=de",
    "/admin/?lang=de",
    "/admin/moderation?lang=de",
    "/admin/endorsements?lang=de",
    "/admin/endorsements/{rtl}?lang=de",
    "/admin/appeals/{appeal}?lang=de",
    "/admin/appeals?lang=de",
    "/admin/dossiers?lang=de",
    "/admin/organisers?lang=de",
    "/admin/audit?lang=de",
    "/admin/export?lang=de",
    "/admin/account/password?lang=de",
]


@pytest.mark.one_pass
@pytest.mark.parametrize("javascript", [True], ids=["js"])
def test_german_organiser_pages_have_no_serious_violations(live_server, page):
    ids = _setup(live_server)
    page.goto(f"{live_server.url}/admin/login?lang=de")
    page.fill("input[name=email]", "ada@orga.example")
    page.fill("input[name=password]", "falsch")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert axe_violations(page) == [], "failed login"
    page.fill("input[name=email]", "ada@orga.example")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    for template in ADMIN_PAGES:
        path = template.format(**ids)
        page.goto(f"{live_server.url}{path}")
        _is_german(page)
        assert axe_violations(page) == [], path
    # The confirmation step of closing, with its error.
    page.goto(f"{live_server.url}/admin/appeals/{ids['appeal']}?lang=de")
    with page.expect_navigation():
        page.click("form.confirm-close button[type=submit]")
    assert axe_violations(page) == [], "closing unconfirmed"
