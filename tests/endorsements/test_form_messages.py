"""The form's messages say which field and what is wrong (issue 16)."""

from __future__ import annotations

import pytest

from petition import i18n
from petition.endorsements.forms import UnknownDomainError, WebsiteError, normalise_website, parse_endorsement_form
from tests.support import valid_form


@pytest.mark.parametrize(
    ("name", "label", "limit"),
    [
        ("organisation_name", "Name of the organisation", 200),
        ("city", "City", 100),
        ("comment", "Public comment", 1000),
    ],
)
def test_a_length_error_names_its_field(name, label, limit):
    parsed = parse_endorsement_form(valid_form(**{name: "x" * (limit + 1)}))
    assert set(parsed.errors) == {name}
    assert label in parsed.errors[name]
    assert str(limit) in parsed.errors[name]


def test_a_length_error_names_its_field_in_the_readers_language():
    with i18n.language("de"):
        parsed = parse_endorsement_form(valid_form(city="x" * 101))
    assert parsed.errors["city"] == "„Ort“ ist zu lang: Bitte verwenden Sie höchstens 100 Zeichen."


@pytest.mark.parametrize("typed", ["www.friedensnetz", "https://peace.local/", "http://group.internal", "office.lan"])
def test_a_website_without_a_public_top_level_domain_is_refused(typed):
    with pytest.raises(UnknownDomainError):
        normalise_website(typed)
    parsed = parse_endorsement_form(valid_form(website=typed))
    assert "does not end in a known domain" in parsed.errors["website"]


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        ("www.friedensnetz.de", "https://www.friedensnetz.de"),
        ("connection-ev.org", "https://connection-ev.org"),
        ("peace.berlin", "https://peace.berlin"),
        ("мир.укр", "https://мир.укр"),
        ("https://group.co.uk/about", "https://group.co.uk/about"),
        ("https://group.example", "https://group.example"),  # RFC 2606, for documentation
    ],
)
def test_websites_with_a_public_top_level_domain_are_taken(typed, normalised):
    assert normalise_website(typed) == normalised


def test_a_host_without_a_dot_is_still_refused_as_before():
    with pytest.raises(WebsiteError):
        normalise_website("friedensnetz")
