"""People endorsing in a real browser, with and without JavaScript."""

from __future__ import annotations

from tests.support import links, translated, wait_for_mail


def fill_endorsement(page, *, name, country, email, visibility="public", org_type="peace", city=""):
    page.fill("#f-organisation_name", name)
    page.select_option("#f-country", country)
    if city:
        page.fill("#f-city", city)
    page.select_option("#f-organisation_type", org_type)
    page.fill("#f-contact_name", "Kontaktperson")
    page.fill("#f-contact_email", email)
    page.check(f"#f-visibility-{visibility}")
    page.check("#f-authorised")
    page.check("#f-consent")


def test_german_organisation_endorses_in_german(live_server, smtp, page, shots):
    page.goto(f"{live_server.url}/appeals/protect-deserters?lang=de")
    assert page.locator("html").get_attribute("lang") == "de"
    shots("appeal-de")
    fill_endorsement(
        page, name="Friedenskreis Offenbach", country="DE", city="Offenbach", email="kreis@friedenskreis.example"
    )
    page.click("button[type=submit]")
    page.wait_for_url("**/check-email**")
    shots("check-email")

    [message] = wait_for_mail(smtp, "kreis@friedenskreis.example")
    assert message["Content-Language"] == "de"
    [link] = links(message, live_server.url)
    page.goto(link)
    shots("confirm-page")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.locator("[role=status]").count() == 1
    shots("confirmed")

    page.goto(f"{live_server.url}/appeals/protect-deserters/signatories?lang=de")
    assert page.get_by_text("Friedenskreis Offenbach").count() == 1
    assert "Deutschland" in page.content()
    shots("listed")
    page.goto(f"{live_server.url}/api/appeals/protect-deserters")
    assert '"DE":1' in page.content().replace(" ", "")


def test_belarusian_organisation_endorses_anonymously_in_russian(live_server, smtp, page, shots):
    secret_name = "Незалежная ініцыятыва Гомель"
    # The browser asks for English (en-GB): only ?lang=ru, carried from page to page and into
    # the email's link, keeps every step in Russian.
    page.goto(f"{live_server.url}/appeals/protect-deserters?lang=ru")
    assert page.locator("html").get_attribute("lang") == "ru"
    assert page.locator("main button[type=submit]").inner_text().strip() == translated("Endorse the appeal", "ru")
    fill_endorsement(
        page,
        name=secret_name,
        country="BY",
        email="hidden@initiative.example",
        visibility="anonymous",
        org_type="human_rights",
    )
    shots("form-filled")
    page.click("main button[type=submit]")
    page.wait_for_url("**/check-email**")
    assert page.locator("h1").inner_text().strip() == translated("Check your email", "ru")
    [message] = wait_for_mail(smtp, "hidden@initiative.example")
    assert message["Content-Language"] == "ru"
    assert message["Subject"] == translated("Please confirm your endorsement", "ru")
    [link] = links(message, live_server.url)
    page.goto(link)
    assert page.locator("h1").inner_text().strip() == translated("Confirm your endorsement", "ru")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    shots("confirmed")
    assert page.locator("html").get_attribute("lang") == "ru"
    assert page.locator("h1").inner_text().strip() == translated("Endorsement confirmed", "ru")
    assert translated("As you asked, your organisation is counted but not named.", "ru") in (
        page.locator("main").inner_text()
    )

    # Counted — as one of "other countries": a lone anonymous group is not attributed to Belarus...
    page.goto(f"{live_server.url}/api/appeals/protect-deserters")
    content = page.content().replace(" ", "")
    assert '"total":1' in content and '"unattributed":1' in content and '"BY"' not in content
    # ...but named nowhere public.
    for path in (
        "/appeals/protect-deserters?lang=ru",
        "/appeals/protect-deserters/signatories?lang=ru",
        "/api/appeals/protect-deserters/endorsements",
        "/appeals/protect-deserters/endorsements.csv",
    ):
        response = page.request.get(f"{live_server.url}{path}")
        assert response.ok
        assert secret_name not in response.text(), path
    page.goto(f"{live_server.url}/appeals/protect-deserters/signatories?lang=ru")
    shots("list-without-name")
