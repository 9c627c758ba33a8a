"""Organisations that asked not to be named are counted everywhere and named nowhere public."""

from __future__ import annotations

import csv
import io
import json

from tests.factories import add_endorsements

SLUG = "protect-deserters"
SECRET_NAME = "Hidden Deserters Aid Minsk"
SECRET_CITY = "Minsk-Secret-City"
SECRET_SITE = "https://hidden-aid.example"
PUBLIC_PAGES = [
    f"/appeals/{SLUG}",
    f"/appeals/{SLUG}/signatories",
    f"/appeals/{SLUG}/signatories?country=BY",
    f"/appeals/{SLUG}/signatories?q=Hidden",
    f"/appeals/{SLUG}/signatories?type=refugee_support",
    "/api/appeals",
    f"/api/appeals/{SLUG}",
    f"/api/appeals/{SLUG}/endorsements",
    f"/api/appeals/{SLUG}/endorsements?country=BY",
    f"/appeals/{SLUG}/endorsements.csv",
    f"/appeals/{SLUG}/endorsements.csv?country=BY",
]


def test_anonymous_organisation_is_counted_but_never_named(client):
    add_endorsements(
        client,
        visibility="anonymous",
        organisation_name=SECRET_NAME,
        country="BY",
        city=SECRET_CITY,
        website=SECRET_SITE,
        organisation_type="refugee_support",
        contact_email="secret@hidden-aid.example",
        contact_name="Secret Contact",
    )
    add_endorsements(
        client,
        organisation_name="Named Peace Group",
        country="BY",
        organisation_type="refugee_support",
        contact_email="named@peace.example",
        contact_name="Named Contact",
    )

    for path in PUBLIC_PAGES:
        for lang in ("en", "ru"):
            response = client.get(path + ("&" if "?" in path else "?") + f"lang={lang}")
            assert response.status_code == 200, path
            body = response.text
            for secret in (
                SECRET_NAME,
                "Hidden Deserters",
                SECRET_CITY,
                "hidden-aid",
                "Secret Contact",
                "Named Contact",
                "named@peace.example",
            ):
                assert secret not in body, (path, secret)

    # Counted: in the totals and as a sentence on the list page; one alone is not attributed to
    # its country (tests/publish/test_small_counts.py), it counts under "other countries".
    counts = client.get(f"/api/appeals/{SLUG}").json()["counts"]
    assert counts == {"total": 2, "by_country": {"BY": 1}, "unattributed": 1}
    page = client.get(f"/appeals/{SLUG}/signatories").text
    assert "1 organisation from another country asked not to be named." in page
    assert "Named Peace Group" in page
    assert "1 of them asked not to be named." in client.get(f"/appeals/{SLUG}").text


def test_a_search_for_an_anonymous_name_finds_nothing_and_says_so(client):
    add_endorsements(client, visibility="anonymous", organisation_name=SECRET_NAME, country="BY")
    page = client.get(f"/appeals/{SLUG}/signatories", params={"q": SECRET_NAME}).text
    assert "0 named organisations match." in page
    assert SECRET_NAME not in page.replace(f'value="{SECRET_NAME}"', "")
    # The search box keeps what was typed, escaped: that is the only echo of the query.
    assert page.count(SECRET_NAME) == 1


def test_pending_withdrawn_and_quarantined_endorsements_are_neither_counted_nor_named(client):
    for state in ("pending", "withdrawn", "quarantined", "rejected"):
        add_endorsements(client, organisation_name=f"Not Listed {state}", country="FR", state=state)
    assert client.get(f"/api/appeals/{SLUG}").json()["counts"] == {"total": 0, "by_country": {}, "unattributed": 0}
    for path in PUBLIC_PAGES:
        assert "Not Listed" not in client.get(path).text, path


def test_a_script_in_a_name_is_escaped_in_html_and_json(client):
    name = "<script>alert(1)</script>"
    add_endorsements(client, organisation_name=name, country="FR", city="<img src=x onerror=alert(2)>")
    for path in (f"/appeals/{SLUG}", f"/appeals/{SLUG}/signatories"):
        body = client.get(path).text
        assert "<script>alert(1)</script>" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert "<img src=x" not in body
    response = client.get(f"/api/appeals/{SLUG}/endorsements")
    assert response.headers["content-type"].startswith("application/json")
    assert "<script>" not in response.text and "<img" not in response.text
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in response.text
    # Escaped, not altered: the data reads back exactly.
    assert json.loads(response.text)["items"][0]["organisation_name"] == name
    rows = list(csv.DictReader(io.StringIO(client.get(f"/appeals/{SLUG}/endorsements.csv").text)))
    assert rows[0]["organisation_name"] == name
