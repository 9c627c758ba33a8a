"""Languages: how a request's language is chosen, and that each language reaches the page.

The catalogues come later; these tests check the plumbing with what Babel's data already
translates (country names, dates) and with what the page says about its own language.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from petition import i18n
from petition.i18n_middleware import split_language_prefix
from tests.conftest import BASE_URL
from tests.factories import add_endorsements
from tests.support import links, wait_for_mail

SLUG = "protect-deserters"
GERMANY = {
    "en": "Germany",
    "de": "Deutschland",
    "ru": "Германия",
    "uk": "Німеччина",
    "fr": "Allemagne",
    "be": "Германія",
    "pl": "Niemcy",
    "es": "Alemania",
    "it": "Germania",
}
# 12 March 2026 in each language's medium date format (Babel's CLDR data).
DATES = {
    "en": "Mar 12, 2026",
    "de": "12.03.2026",
    "ru": "12 мар. 2026\u202fг.",
    "uk": "12 бер. 2026\u202fр.",
    "fr": "12 mars 2026",
    "be": "12 сак 2026\u202fг.",
    "pl": "12 mar 2026",
    "es": "12 mar 2026",
    "it": "12 mar 2026",
}


def html_lang(html: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', html)
    assert match
    return match.group(1)


@pytest.mark.parametrize(
    ("query", "prefix", "accept", "expected"),
    [
        (None, None, None, "en"),
        (None, None, "fr-CH, fr;q=0.9, en;q=0.8", "fr"),
        (None, None, "ja, uk;q=0.5, de;q=0.4", "uk"),
        (None, None, "de;q=0.2, ru;q=0.9", "ru"),
        (None, None, "ru;q=0, de;q=0.1", "de"),
        (None, None, "de;level=1;q=0.3, fr;q=0.6", "fr"),
        (None, None, "ja, pt, *", "en"),
        (None, None, "de;q=abc, fr;q=0.1", "fr"),
        (None, "de", "fr", "de"),
        ("ru", "de", "fr", "ru"),
        ("RU", None, None, "ru"),
        ("xx", "uk", "fr", "uk"),
        ("xx", None, "fr", "fr"),
        ("", None, "de-AT", "de"),
    ],
)
def test_negotiation_order(query, prefix, accept, expected):
    assert i18n.negotiate(query, accept, prefix=prefix) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/de/appeals/x", ("de", "/appeals/x")),
        ("/uk", ("uk", "/")),
        ("/fr/", ("fr", "/")),
        ("/appeals/de", (None, "/appeals/de")),
        ("/deutsch/x", (None, "/deutsch/x")),
        ("/ja/x", (None, "/ja/x")),
        ("/es/x", ("es", "/x")),
    ],
)
def test_language_prefix(path, expected):
    assert split_language_prefix(path) == expected


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_each_language_is_wired_through_query_prefix_and_header(client, lang):
    add_endorsements(
        client,
        organisation_name="Connection e.V.",
        country="DE",
        listed_at=dt.datetime(2026, 3, 12, 10, 0, tzinfo=dt.UTC),
    )
    for response in (
        client.get(f"/appeals/{SLUG}?lang={lang}"),
        client.get(f"/{lang}/appeals/{SLUG}"),
        client.get(f"/appeals/{SLUG}", headers={"Accept-Language": f"{lang};q=0.9, ja"}),
    ):
        assert response.status_code == 200
        assert html_lang(response.text) == lang
        assert response.headers["content-language"] == lang
        assert GERMANY[lang] in response.text  # the count, the chart and the table
        assert DATES[lang] in response.text  # the newest endorsements
    listing = client.get(f"/appeals/{SLUG}/signatories?lang={lang}").text
    assert html_lang(listing) == lang
    assert f'<h2 id="c-DE">{GERMANY[lang]}</h2>' in listing
    assert f'datetime="2026-03-12">{DATES[lang]}</time>' in listing
    # The country filter lists countries in the reader's language, with their counts.
    assert f'<option value="DE">{GERMANY[lang]} (' in listing


def test_explicit_choice_beats_the_browser_and_is_kept_in_links(client):
    headers = {"Accept-Language": "fr"}
    assert html_lang(client.get(f"/appeals/{SLUG}", headers=headers).text) == "fr"
    page = client.get(f"/appeals/{SLUG}?lang=uk", headers=headers).text
    assert html_lang(page) == "uk"
    assert f'href="/appeals/{SLUG}/signatories?lang=uk"' in page
    assert f'action="/appeals/{SLUG}/endorse?lang=uk"' in page
    prefixed = client.get(f"/ru/appeals/{SLUG}", headers=headers).text
    assert html_lang(prefixed) == "ru"
    assert f'href="/appeals/{SLUG}/signatories?lang=ru"' in prefixed
    # Without an explicit choice, links stay clean and the browser keeps deciding.
    plain = client.get(f"/appeals/{SLUG}", headers=headers).text
    assert f'href="/appeals/{SLUG}/signatories"' in plain
    # Errors too are in the chosen language.
    missing = client.get("/de/no-such-page")
    assert missing.status_code == 404 and html_lang(missing.text) == "de"
    # The open data speak the same languages.
    assert client.get(f"/de/api/appeals/{SLUG}").json()["slug"] == SLUG


def test_language_switcher_keeps_the_reader_on_the_same_page(client):
    add_endorsements(client, organisation_name="Group", country="NL")
    page = client.get(f"/appeals/{SLUG}/signatories?country=NL&page=1&lang=de").text
    switcher = page[page.index('<nav class="languages"') : page.index("</nav>")]
    hrefs = dict(re.findall(r'<a href="([^"]+)" hreflang="(\w+)"', switcher))
    expected = {f"/appeals/{SLUG}/signatories?country=NL&amp;page=1&amp;lang={code}": code for code in i18n.LANGUAGES}
    assert hrefs == expected
    assert 'hreflang="de" lang="de" aria-current="true"' in switcher
    for code in i18n.LANGUAGES:
        target = client.get(f"/appeals/{SLUG}/signatories?country=NL&page=1&lang={code}")
        assert target.status_code == 200 and html_lang(target.text) == code


def test_switching_language_on_a_form_with_errors_leads_to_the_appeal_page(site, client):
    response = site.endorse(lang="fr", organisation_name="")
    assert response.status_code == 400
    assert html_lang(response.text) == "fr"
    text = response.text
    switcher = text[text.index('<nav class="languages"') : text.index("</nav>")]
    assert f'href="/appeals/{SLUG}?lang=de"' in switcher
    assert "/endorse?" not in switcher


def test_emails_go_out_in_the_language_the_organisation_used(site, smtp, client):
    email = "kontakt@friedensgruppe.example"
    assert site.endorse(lang="de", contact_email=email).status_code == 303
    [confirm] = wait_for_mail(smtp, email)
    assert confirm["Content-Language"] == "de"
    [link] = links(confirm, BASE_URL)
    assert "lang=de" in link
    # The contact confirms from a browser that prefers French: the thank-you stays German.
    client.headers["Accept-Language"] = "fr"
    assert site.confirm(link).status_code == 303
    messages = wait_for_mail(smtp, email, count=2)
    thank_you = messages[-1]
    assert thank_you["Content-Language"] == "de"
    assert [u for u in links(thank_you, BASE_URL) if "lang=de" in u]


# What a reader of each language sees, checked by the translated words themselves.
TRANSLATED = {
    # language: (a button of the appeal page, the error for a missing name, the confirmation subject)
    "de": ("Appell unterstützen", "Namen Ihrer Organisation", "Bitte bestätigen"),
    "ru": ("Подписать обращение", "название вашей организации", "Пожалуйста, подтвердите"),
    "uk": ("Підписати звернення", "назву вашої організації", "Будь ласка, підтвердьте"),
    "fr": ("Soutenir l’appel", "nom de votre organisation", "Veuillez confirmer"),
}


@pytest.mark.parametrize("lang", sorted(TRANSLATED))
def test_appeal_page_form_errors_and_confirmation_email_are_in_the_readers_language(site, smtp, client, lang):
    from petition.i18n import translations

    button, name_error, subject = TRANSLATED[lang]
    catalogue = translations(lang)
    assert catalogue.gettext("Endorse the appeal") == button
    page = client.get(f"/appeals/protect-deserters?lang={lang}")
    assert button in page.text
    assert "Endorse the appeal" not in page.text

    errors = site.endorse(lang=lang, organisation_name="")
    assert errors.status_code == 400
    assert catalogue.gettext("Please enter the name of your organisation.") in errors.text
    assert name_error in errors.text

    email = f"contact-{lang}@languages.example"
    assert site.endorse(lang=lang, contact_email=email).status_code == 303
    [message] = wait_for_mail(smtp, email)
    assert message["Subject"] == catalogue.gettext("Please confirm your endorsement")
    assert message["Subject"].startswith(subject)
    assert message["Content-Language"] == lang
