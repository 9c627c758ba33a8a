"""axe-core finds no serious or critical violation; the form works by keyboard alone."""

from __future__ import annotations

import pytest

from tests.journeys.conftest import axe_violations
from tests.support import links, wait_for_mail

PUBLIC_PAGES = [
    "/appeals/protect-deserters",
    "/appeals/protect-deserters?lang=ru",
    "/appeals/protect-deserters/signatories",
    "/appeals/protect-deserters/check-email",
    "/no-such-page",
]

#: The markup and the keyboard, not the database: once, when scripts/test runs both passes.
pytestmark = pytest.mark.one_pass


@pytest.mark.parametrize("javascript", [True], ids=["js"])
@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_pages_have_no_serious_violations(live_server, page, path):
    page.goto(f"{live_server.url}{path}")
    assert axe_violations(page) == []


@pytest.mark.parametrize("javascript", [True], ids=["js"])
def test_form_errors_and_confirm_page_have_no_serious_violations(live_server, smtp, page):
    page.goto(f"{live_server.url}/appeals/protect-deserters")
    page.click("button[type=submit]")  # nothing filled in: every error shown
    page.wait_for_load_state()
    assert page.locator(".error-summary").count() == 1
    assert axe_violations(page) == []


@pytest.mark.parametrize("javascript", [True], ids=["js"])
def test_endorsing_and_confirming_by_keyboard_alone(live_server, smtp, page, shots):
    page.goto(f"{live_server.url}/appeals/protect-deserters")
    keyboard = page.keyboard

    def tab_to(selector: str, limit: int = 80) -> None:
        for _ in range(limit):
            keyboard.press("Tab")
            if page.evaluate("sel => document.activeElement === document.querySelector(sel)", selector):
                return
        raise AssertionError(f"{selector} cannot be reached with Tab")

    tab_to("#f-organisation_name")
    keyboard.type("Keyboard Peace Group")
    tab_to("#f-country")
    keyboard.type("Austria")  # typing selects in a focused <select>
    tab_to("#f-organisation_type")
    keyboard.type("Peace")
    tab_to("#f-contact_name")
    keyboard.type("Kim")
    tab_to("#f-contact_email")
    keyboard.type("kim@keyboard.example")
    tab_to("#f-visibility-public")  # nothing is chosen for the person: Space chooses
    keyboard.press("Space")
    tab_to("#f-authorised")
    keyboard.press("Space")
    tab_to("#f-consent")
    keyboard.press("Space")
    tab_to("button[type=submit]")
    keyboard.press("Enter")
    page.wait_for_url("**/check-email**")

    [message] = wait_for_mail(smtp, "kim@keyboard.example")
    [link] = links(message, live_server.url)
    page.goto(link)
    assert axe_violations(page) == []  # the confirm page
    tab_to("main button[type=submit]")
    with page.expect_navigation():
        keyboard.press("Enter")
    assert page.locator("[role=status]").count() == 1
    response = page.request.get(f"{live_server.url}/api/appeals/protect-deserters")
    assert response.json()["counts"]["by_country"] == {"AT": 1}


@pytest.mark.parametrize("javascript", [True], ids=["js"])
def test_verification_and_organiser_pages_have_no_serious_violations(live_server, page):
    import asyncio

    from petition.organisers.passwords import hash_password
    from petition.organisers.queries import create_organiser
    from petition.organisers.roles import Role

    page.goto(f"{live_server.url}/verify")
    assert axe_violations(page) == []
    page.goto(f"{live_server.url}/admin/login")
    assert axe_violations(page) == []

    future = asyncio.run_coroutine_threadsafe(
        create_organiser(
            live_server.services.db,
            email="axe@petition.example",
            password_hash=hash_password("an accessible password"),
            role=Role.ADMIN,
        ),
        live_server.loop,
    )
    future.result(30)
    page.fill("input[name=email]", "axe@petition.example")
    page.fill("input[name=password]", "an accessible password")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    for path in (
        "/admin/",
        "/admin/moderation",
        "/admin/endorsements",
        "/admin/dossiers",
        "/admin/appeals",
        "/admin/organisers",
        "/admin/audit",
        "/admin/export",
    ):
        page.goto(f"{live_server.url}{path}")
        assert page.url.endswith(path), page.url
        assert axe_violations(page) == [], path


@pytest.mark.parametrize("javascript", [True], ids=["js"])
def test_check_email_with_its_address_and_resend_and_the_paged_list_have_no_serious_violations(
    live_server, smtp, database_url, page
):
    from concurrent.futures import ThreadPoolExecutor

    from tests.factories import add_endorsements

    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            add_endorsements, database_url, 120, country="DE", organisation_name="جمعية السلام", comment="שלום."
        ).result(60)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/appeals/protect-deserters/signatories?page=2")
    assert page.locator(".page-numbers a").count() >= 3
    assert axe_violations(page) == []
    page.goto(f"{live_server.url}/appeals/protect-deserters")
    page.fill("#f-organisation_name", "Axe Peace Group")
    page.select_option("#f-country", "AT")
    page.select_option("#f-organisation_type", "peace")
    page.fill("#f-contact_name", "Kim")
    page.fill("#f-contact_email", "kim@axe.example")
    page.check("#f-visibility-public")
    page.check("#f-authorised")
    page.check("#f-consent")
    with page.expect_navigation():
        page.click("section.endorse button[type=submit]")
    assert page.locator(".sent-to").inner_text() == "kim@axe.example"
    assert axe_violations(page) == []
    with page.expect_navigation():
        page.click("form.resend button[type=submit]")
    assert page.locator("[role=status]").count() == 1
    assert axe_violations(page) == []
