"""The EU Transparency Register number an organisation may give (issue 18): checked for its shape,
kept as given, shown with a named organisation on the list, in the JSON and the CSV, and for an
anonymous one nowhere public — a register number names an organisation as surely as its name."""

from __future__ import annotations

import csv
import html
import io
from typing import Any

import pytest

from petition.endorsements.forms import normalise_transparency_register
from tests.conftest import BASE_URL
from tests.support import SMTPServer, db_rows, links, mail_to, wait_for

SLUG = "protect-deserters"
NUMBER = "123456789012-34"


def _listed(site: Any, smtp: SMTPServer, address: str, **fields: str) -> None:
    assert site.endorse(contact_email=address, **fields).status_code == 303
    [confirmation] = mail_to(smtp, address)
    [confirm_link] = links(confirmation, BASE_URL)
    assert site.confirm(confirm_link).status_code == 303


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("123456789012-34", NUMBER),
        (" 1234 5678 9012-34 ", NUMBER),
        ("", None),
        ("   ", None),
        ("123456789-01", "123456789-01"),
    ],
)
def test_a_number_is_kept_without_the_spaces_people_copy_with_it(typed: str, kept: str | None) -> None:
    assert normalise_transparency_register(typed) == kept


@pytest.mark.parametrize(
    "typed", ["12345678-90", "1234567890123-45", "123456789012_34", "123456789012-3", "DE123456789-12"]
)
def test_what_is_not_shaped_like_a_register_number_is_refused(typed: str) -> None:
    with pytest.raises(ValueError):
        normalise_transparency_register(typed)


def test_a_wrong_number_reshows_the_form_with_the_message_and_every_value_kept(site: Any, database_url: str) -> None:
    response = site.endorse(transparency_register="12-34", organisation_name="Friedensnetz Kassel")
    assert response.status_code == 400
    page = html.unescape(response.text)
    assert "Please enter the EU Transparency Register number as the register shows it" in page
    assert 'value="12-34"' in page and 'value="Friedensnetz Kassel"' in page
    assert 'aria-describedby="f-transparency_register-hint f-transparency_register-error"' in page
    assert db_rows(database_url, "SELECT id FROM endorsements") == []


def test_a_named_organisations_number_is_on_the_list_in_the_json_and_the_csv(
    site: Any, smtp: SMTPServer, database_url: str
) -> None:
    _listed(site, smtp, "office@register.example", transparency_register="1234 56789012-34")
    [row] = db_rows(database_url, "SELECT transparency_register FROM endorsements")
    assert row["transparency_register"] == NUMBER

    listing = html.unescape(site.client.get(f"/appeals/{SLUG}/signatories").text)
    assert f"EU Transparency Register: {NUMBER}" in listing
    [item] = site.client.get(f"/api/appeals/{SLUG}/endorsements").json()["items"]
    assert item["transparency_register"] == NUMBER
    [record] = list(csv.DictReader(io.StringIO(site.client.get(f"/appeals/{SLUG}/endorsements.csv").text)))
    assert record["transparency_register"] == NUMBER
    german = html.unescape(site.client.get(f"/appeals/{SLUG}/signatories?lang=de").text)
    assert f"EU-Transparenzregister: {NUMBER}" in german


def test_an_anonymous_organisations_number_is_shown_nowhere_public(
    site: Any, smtp: SMTPServer, database_url: str
) -> None:
    hidden = "987654321098-76"
    _listed(site, smtp, "office@hidden.example", transparency_register=hidden, visibility="anonymous")
    [row] = db_rows(database_url, "SELECT state, transparency_register FROM endorsements")
    assert row["state"] in ("confirmed", "approved") and row["transparency_register"] == hidden
    public = [
        f"/appeals/{SLUG}",
        f"/appeals/{SLUG}/signatories",
        f"/api/appeals/{SLUG}",
        f"/api/appeals/{SLUG}/endorsements",
        f"/appeals/{SLUG}/endorsements.csv",
        "/log/entries?start=0&end=1",
    ]
    # The log appends the leaf after the confirmation, in a task of its own: wait for it.
    wait_for(lambda: site.client.get("/log/entries?start=0&end=1").status_code == 200, timeout=30)
    for path in public:
        response = site.client.get(path)
        assert response.status_code == 200, path
        assert hidden not in response.text and "987654321098" not in response.text, path
