"""The thank-you email links a named organisation with a website to the page that proves its domain."""

from __future__ import annotations

import html
from typing import Any

import pytest

from tests.conftest import BASE_URL
from tests.support import SMTPServer, html_body, links, mail_to


def _thank_you(site: Any, smtp: SMTPServer, address: str, **fields: str) -> Any:
    assert site.endorse(contact_email=address, **fields).status_code == 303
    [confirmation] = mail_to(smtp, address)
    [confirm_link] = links(confirmation, BASE_URL)
    assert site.confirm(confirm_link).status_code == 303
    return mail_to(smtp, address, count=2)[1]


def test_the_thank_you_email_links_the_domain_proof_page(site: Any, smtp: SMTPServer):
    thank_you = _thank_you(site, smtp, "office@proof-link.example", website="www.proof-link.example")
    [url] = [u for u in links(thank_you, BASE_URL) if "/domain-proof/" in u]
    assert url.replace("&", "&amp;") in html_body(thank_you)
    page = site.client.get(url.replace(BASE_URL, ""))
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    text = html.unescape(page.text)
    assert '_petition-challenge.proof-link.example. TXT "' in text
    assert "https://proof-link.example/.well-known/petition-endorsement/" in text
    assert text.count('<form method="post"') == 1
    for lang, button in (
        ("de", "Jetzt prüfen"),
        ("ru", "Проверить сейчас"),
        ("uk", "Перевірити зараз"),
        ("fr", "Vérifier maintenant"),
    ):
        translated = site.client.get(url.replace(BASE_URL, "").replace("lang=en", f"lang={lang}"))
        assert f'<html lang="{lang}"' in translated.text and button in translated.text


@pytest.mark.parametrize(
    "fields",
    [{"visibility": "anonymous", "website": "anonymous-link.example"}, {"website": ""}],
    ids=["anonymous", "no-website"],
)
def test_no_proof_link_for_an_anonymous_organisation_or_one_without_a_website(
    site: Any, smtp: SMTPServer, fields: dict[str, str]
):
    thank_you = _thank_you(site, smtp, "office@no-proof.example", **fields)
    assert not [u for u in links(thank_you, BASE_URL) if "/domain-proof/" in u]
