"""The privacy page informs as GDPR Art. 13 asks: who the controller is and how to reach it, why
and on what legal basis, who receives what, for how long, every right, and where to complain."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from petition.app import create_app
from tests.conftest import BASE_URL, make_settings

OPERATOR = {
    "operator_name": "Connection e.V.",
    "operator_email": "office@connection-ev.example",
    "operator_address": r"Von-Behring-Str. 110\n63075 Offenbach am Main",
    "privacy_contact": "datenschutz@connection-ev.example",
}


def main_text(html: str) -> str:
    match = re.search(r"<main.*?</main>", html, re.S)
    assert match
    return match.group(0)


@pytest.fixture
def operated(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path / "data", None, unconfirmed_retention_days=12, **OPERATOR)
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        yield client


def test_the_page_names_the_controller_and_its_privacy_contact(operated):
    page = main_text(operated.get("/privacy").text)
    assert "The controller within the meaning of the General Data Protection Regulation (GDPR) is" in page
    assert "<bdi>Connection e.V.</bdi>" in page
    assert "<bdi>Von-Behring-Str. 110</bdi><br><bdi>63075 Offenbach am Main</bdi>" in page
    assert 'href="mailto:datenschutz@connection-ev.example"' in page


def test_the_page_gives_purposes_legal_bases_recipients_retention_rights_and_the_authority(operated):
    page = main_text(operated.get("/privacy").text)
    assert "Art. 6(1)(a) GDPR" in page  # consent: the endorsement
    assert "Art. 6(1)(f) GDPR" in page  # legitimate interest: abuse protection, audit log
    assert "Members of parliament and the other addressees of the appeal receive a signed dossier" in page
    assert "never named to anyone outside the organisers" in page
    assert "after 12 days" in page  # UNCONFIRMED_RETENTION_DAYS
    for article in ("Art. 15", "(Art. 16)", "(Art. 17)", "(Art. 18)", "(Art. 20)", "(Art. 21)", "(Art. 7(3))"):
        assert article in page
    assert "supervisory authority" in page and "Art. 77 GDPR" in page
    assert 'href="/privacy/data"' in page
    assert "link to withdraw the endorsement" in page


def test_a_privacy_contact_may_be_a_web_page_and_the_operator_email_stands_in_for_none(database_url, tmp_path):
    for overrides, href in (
        ({"privacy_contact": "https://connection-ev.example/privacy"}, 'href="https://connection-ev.example/privacy"'),
        ({"operator_email": "office@connection-ev.example"}, 'href="mailto:office@connection-ev.example"'),
    ):
        settings = make_settings(database_url, tmp_path / "data", None, operator_name="Connection e.V.", **overrides)
        with TestClient(create_app(settings), base_url=BASE_URL) as client:
            assert href in main_text(client.get("/privacy").text)


def test_without_an_operator_the_page_says_the_controller_has_not_been_named(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path / "data", None)
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        page = main_text(client.get("/privacy").text)
    assert "It has not published its name and address here yet." in page
    assert "mailto:" not in page
    assert "Art. 77 GDPR" in page


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("de", ("Verantwortlicher", "Aufsichtsbehörde", "Art. 6 Abs. 1 lit. a DSGVO")),
        ("fr", ("responsable du traitement", "autorité de contrôle", "art. 6, par. 1, point a), du RGPD")),
        ("ru", ("контролёром", "надзорный орган", "ст. 6(1)(a) GDPR")),
        ("uk", ("Контролером", "наглядового органу", "ст. 6(1)(a) GDPR")),
    ],
)
def test_the_notice_is_translated(operated, language, words):
    page = main_text(operated.get(f"/privacy?lang={language}").text)
    for word in words:
        assert word in page, word
