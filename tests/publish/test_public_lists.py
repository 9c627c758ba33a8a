"""The signatory list for people (issue 16): page numbers, a country filter sorted by name with
counts compared as numbers, a CSV that spreadsheets read, and names isolated for bidi."""

from __future__ import annotations

import csv
import io
import re

import pytest

from petition.publish.views import page_numbers
from tests.factories import add_endorsements

SLUG = "protect-deserters"


@pytest.mark.parametrize(
    ("page", "pages", "expected"),
    [
        (1, 1, [1]),
        (1, 3, [1, 2, 3]),
        (1, 10, [1, 2, 3, None, 10]),
        (5, 10, [1, 2, 3, 4, 5, 6, 7, None, 10]),
        (10, 10, [1, None, 8, 9, 10]),
        (4, 10, [1, 2, 3, 4, 5, 6, None, 10]),
    ],
)
def test_page_numbers_keep_the_first_the_last_and_the_neighbours(page, pages, expected):
    assert page_numbers(page, pages) == expected


def test_the_pager_links_to_each_page_by_number(client):
    add_endorsements(client, 260, country="NL")
    html = client.get(f"/appeals/{SLUG}/signatories", params={"page": "3"}).text
    pager = re.search(r'<nav class="pagination".*?</nav>', html, re.S).group(0)
    linked = [int(n) for n in re.findall(r'href="[^"]*page=(\d+)[^"]*"', pager)]
    assert linked == [2, 1, 2, 3, 4, 5, 6, 4]  # previous, the numbers, next
    assert re.search(r'aria-current="page" href="[^"]*page=3"', pager)


def test_the_country_filter_sorts_by_name_and_counts_as_numbers(client):
    add_endorsements(client, 29, country="DE")
    add_endorsements(client, 3, country="AT")
    add_endorsements(client, 12, country="UA")
    html = client.get(f"/appeals/{SLUG}/signatories").text
    select = re.search(r'<select id="filter-country".*?</select>', html, re.S).group(0)
    options = re.findall(r'<option value="([A-Z]{2})"[^>]*>([^<]*)</option>', select)
    assert options == [("AT", "Austria (3)"), ("DE", "Germany (29)"), ("UA", "Ukraine (12)")]


def test_the_spreadsheet_csv_has_a_byte_order_mark_and_names(client):
    add_endorsements(client, organisation_name="Мирна ініціатива", country="UA", city="Київ", organisation_type="peace")
    plain = client.get(f"/appeals/{SLUG}/endorsements.csv")
    assert not plain.content.startswith(b"\xef\xbb\xbf")  # machines read the contract's CSV as before
    html = client.get(f"/appeals/{SLUG}/signatories", params={"lang": "uk"}).text
    link = re.search(r'<a href="([^"]*format=spreadsheet[^"]*)"', html).group(1).replace("&amp;", "&")
    response = client.get(link)
    assert response.status_code == 200
    assert response.content.startswith(b"\xef\xbb\xbforganisation_name,country,city,organisation_type,")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    plain_rows = list(csv.DictReader(io.StringIO(plain.text, newline="")))
    assert len(rows) == len(plain_rows) == 1  # the same rows
    [row] = rows
    assert {k: row[k] for k in plain_rows[0]} == plain_rows[0]  # the machines' columns, unchanged
    assert row["country_name"] == "Україна"
    assert row["organisation_type_name"] == "Пацифістська або антивоєнна група"
    english = client.get(f"/appeals/{SLUG}/endorsements.csv", params={"format": "spreadsheet", "lang": "en"})
    assert "Ukraine" in english.content.decode("utf-8-sig")
    assert english.headers["etag"] != response.headers["etag"] != plain.headers["etag"]
    assert client.get(f"/appeals/{SLUG}/endorsements.csv", params={"format": "xlsx"}).status_code == 400


def test_names_cities_and_comments_are_isolated_for_bidi(client):
    add_endorsements(client, organisation_name="جمعية السلام", city="Berlin", country="DE", comment="שלום.", website="")
    for path in (f"/appeals/{SLUG}", f"/appeals/{SLUG}/signatories"):
        html = client.get(path).text
        assert '<bdi class="org-name">جمعية السلام</bdi>, <bdi class="city">Berlin</bdi>' in html
    html = client.get(f"/appeals/{SLUG}/signatories").text
    assert '<blockquote class="comment" dir="auto">שלום.</blockquote>' in html
