"""The translation slips people met on the public pages (issue 16), fixed in the catalogues."""

from __future__ import annotations

import pytest

from petition import countries
from tests.support import translated


@pytest.mark.parametrize(
    ("language", "msgid", "expected"),
    [
        ("de", "Check your email", "Prüfen Sie Ihr E-Mail-Postfach"),
        ("de", "For example example.org. Optional.", "Zum Beispiel example.org. Optional."),
        ("de", "Public comment (optional)", "Öffentlicher Kommentar (optional)"),
        (
            "de",
            "Endorse this appeal for your organisation",
            "Unterstützen Sie diesen Appell im Namen Ihrer Organisation",
        ),
        ("de", "Add organiser", "Organisator hinzufügen"),
        ("ru", "Skip to content", "Перейти к основному содержанию"),
        ("uk", "Skip to content", "Перейти до основного змісту"),
        ("ru", "How should your organisation appear?", "Как показывать вашу организацию?"),
        ("uk", "How should your organisation appear?", "Як показувати вашу організацію?"),
        ("fr", "Close", "Clôturer"),
        ("de", "Error:", "Fehler:"),
    ],
)
def test_the_words_people_met_are_fixed(language, msgid, expected):
    assert translated(msgid, language) == expected


def test_no_catalogue_mixes_team_member_and_organisers():
    from pathlib import Path

    german = (Path(__file__).parents[1] / "petition/locale/de/LC_MESSAGES/messages.po").read_text("utf-8")
    assert "Teammitglied" not in german
    assert "Freiwillig" not in german and "(freiwillig)" not in german


def test_belarus_is_named_as_the_french_appeal_names_it():
    assert countries.name("BY", "fr") == "Bélarus"
    assert countries.name("BY", "de") == "Belarus"
    assert dict(countries.choices("fr"))["BY"] == "Bélarus"
