"""A group in exile must choose how it appears: nothing is chosen for it, with or without JavaScript."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from playwright.sync_api import expect

from tests.journeys.conftest import axe_violations
from tests.support import db_rows, links, wait_for_mail

ERROR = "Please choose whether your organisation may be named publicly."


def stored(database_url: str, sql: str) -> list[dict[str, Any]]:
    """The database's rows, read in a thread: Playwright keeps an event loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(db_rows, database_url, sql).result(30)


def tab_to(page, selector: str, limit: int = 120) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("sel => document.activeElement === document.querySelector(sel)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with Tab")


def test_belarusian_group_in_exile_submits_without_choosing_then_asks_not_to_be_named(
    live_server, smtp, database_url, page, javascript, shots
):
    secret_name = "Belarusian Solidarity Circle in Vilnius"
    secret_comment = "We document forced conscription; please keep us out of any list."
    page.goto(f"{live_server.url}/appeals/protect-deserters")
    public = page.get_by_role("radio", name="Name our organisation publicly")
    anonymous = page.get_by_role("radio", name="Count us, but do not name us")
    expect(public).not_to_be_checked()
    expect(anonymous).not_to_be_checked()
    # Where the group works from now, as the country field asks.
    expect(page.get_by_label("Country where your organisation is based now")).to_have_accessible_description(
        re.compile("Groups working in exile: choose the country you work from now")
    )

    page.fill("#f-organisation_name", secret_name)
    page.select_option("#f-country", "LT")
    page.fill("#f-city", "Vilnius")
    page.select_option("#f-organisation_type", "human_rights")
    page.fill("#f-contact_name", "Alesia")
    page.fill("#f-contact_email", "circle@solidarity.example")
    page.fill("#f-comment", secret_comment)
    page.check("#f-authorised")
    page.check("#f-consent")
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    assert navigation.value.status == 400
    shots("not-chosen")

    # The error, at the question, and nothing else: every value is still there, nothing is chosen.
    summary = page.locator(".error-summary")
    expect(summary.get_by_role("link")).to_have_text([ERROR])
    expect(page.locator("#f-visibility #f-visibility-error")).to_have_text(ERROR)
    expect(page.locator("#f-organisation_name")).to_have_value(secret_name)
    expect(page.locator("#f-country")).to_have_value("LT")
    expect(page.locator("#f-comment")).to_have_value(secret_comment)
    expect(page.locator("#f-authorised")).to_be_checked()
    expect(public).not_to_be_checked()
    expect(anonymous).not_to_be_checked()
    assert stored(database_url, "SELECT count(*) AS n FROM endorsements") == [{"n": 0}]
    if javascript:  # axe runs inside the page
        assert axe_violations(page) == []

    # By keyboard: the summary's link leads to the question, Tab to its first option.
    tab_to(page, ".error-summary a")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "f-visibility"
    page.keyboard.press("Tab")
    expect(public).to_be_focused()

    # Under each option, what is shown where (each read with its radio, after the error).
    expect(public).to_have_accessible_description(
        re.compile(
            rf"^{ERROR} Your organisation's name, type, city, country and website appear on this site's list "
            r"of signatories, in the open data \(JSON and CSV\) that anyone can download, and in the signed "
            r"dossier handed to the members of parliament"
        )
    )
    expect(anonymous).to_have_accessible_description(
        re.compile(
            rf"^{ERROR} Choose this if naming your organisation could put people at risk\. It is only counted, "
            r"as “an organisation from” the country you chose above.*nowhere public: not in lists, open data or "
            r"dossiers.*counted under “other countries” instead\. The site's public log records only that an "
            r"organisation from the country you chose endorsed, and on which day, with a code that names no one\.$"
        )
    )
    expect(page.get_by_label("Public comment (optional)")).to_have_accessible_description(
        re.compile("If you choose not to be named, the comment is never published; only the organisers read it")
    )

    page.keyboard.press("ArrowDown")  # the next option of the group, chosen as it gets focus
    expect(anonymous).to_be_focused()
    expect(anonymous).to_be_checked()
    expect(public).not_to_be_checked()
    shots("chose-anonymous")
    tab_to(page, "button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_url("**/check-email**")

    [row] = stored(database_url, "SELECT visibility, country, city, comment FROM endorsements")
    assert row == {"visibility": "anonymous", "country": "LT", "city": "Vilnius", "comment": secret_comment}

    # Confirmed, it is counted, and neither its name nor its comment is published anywhere.
    [message] = wait_for_mail(smtp, "circle@solidarity.example")
    [link] = links(message, live_server.url)
    page.goto(link)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    counts = page.request.get(f"{live_server.url}/api/appeals/protect-deserters").json()["counts"]
    assert counts["total"] == 1
    for path in (
        "/appeals/protect-deserters",
        "/appeals/protect-deserters/signatories",
        "/api/appeals/protect-deserters/endorsements",
        "/appeals/protect-deserters/endorsements.csv",
    ):
        body = page.request.get(f"{live_server.url}{path}").text()
        assert secret_name not in body and "forced conscription" not in body, path
