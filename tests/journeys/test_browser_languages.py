"""Every language the site offers, in a real browser on a phone: the appeal page in that language
(its own title, lang attribute and words), the form's errors translated, the nine languages on
one line, and no serious axe violation (issue 20)."""

from __future__ import annotations

import pytest

from petition.appeals.queries import DEMO_DIR
from petition.appeals.textfile import read_text_file
from petition.i18n import LANGUAGES, translations
from tests.journeys.conftest import axe_violations
from tests.support import sqlite_pass_only

PHONE = {"width": 390, "height": 844}
APPEAL = "/appeals/protect-deserters"


@sqlite_pass_only  # the pages are the same on either backend
@pytest.mark.parametrize("javascript", [True], ids=["js"])
def test_the_appeal_page_in_every_language_on_a_phone(live_server, page, shots):
    page.set_viewport_size(PHONE)
    for language in LANGUAGES:
        page.goto(f"{live_server.url}{APPEAL}?lang={language}")
        assert page.locator("html").get_attribute("lang") == language
        assert page.locator("h1").inner_text() == read_text_file(DEMO_DIR / f"{language}.md").title
        words = translations(language).gettext("Endorse this appeal")
        assert page.locator(".endorse-cta a").inner_text() == words, language
        # The switcher: every language, on one line, within the phone's width, the current one marked.
        tops = page.evaluate(
            "() => [...document.querySelectorAll('.languages a')].map(a => Math.round(a.getBoundingClientRect().top))"
        )
        assert len(tops) == len(LANGUAGES) and len(set(tops)) == 1, (language, tops)
        right = page.evaluate(
            "() => Math.max(...[...document.querySelectorAll('.languages a')]"
            ".map(a => a.getBoundingClientRect().right))"
        )
        assert right <= PHONE["width"], (language, right)
        assert page.locator(f".languages a[hreflang={language}]").get_attribute("aria-current") == "true"
        assert axe_violations(page) == [], language
        shots(f"appeal-{language}")
        # A submission with nothing filled in: the errors first, in this language.
        page.click("section.endorse button[type=submit]")
        page.wait_for_load_state()
        assert page.title().startswith(translations(language).gettext("Error:")), language
        summary = page.locator(".error-summary h2").inner_text()
        assert summary == translations(language).gettext("Please correct the following:"), language
