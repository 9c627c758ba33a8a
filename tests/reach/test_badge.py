"""The counter badge: valid, accessible SVG with the public count, never a withheld one."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.factories import add_endorsements

SLUG = "protect-deserters"
SVG = "{http://www.w3.org/2000/svg}"


def badge(client, **params: str):
    response = client.get(f"/appeals/{SLUG}/badge.svg", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(response.content)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    title = root.find(f"{SVG}title")
    assert title is not None and title.text
    assert root.get("aria-labelledby") == title.get("id")
    shown = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    return response, title.text, shown


def test_the_badge_shows_the_current_count(client):
    add_endorsements(client, 4, country="DE")
    _response, title, shown = badge(client)
    assert "4 organisations have endorsed this appeal." in shown
    assert title.startswith("4 organisations have endorsed this appeal.")
    assert "Protection and asylum for deserters" in title
    add_endorsements(client, 1, country="FR")
    _response, _title, shown = badge(client)
    assert "5 organisations" in shown
    _response, title, shown = badge(client, country="FR", lang="fr")
    assert "France" in title and shown.startswith("1 ")


def test_the_badge_never_reveals_a_withheld_small_count(client):
    # Two anonymous groups from Belarus: fewer than ANONYMOUS_COUNT_THRESHOLD (3).
    add_endorsements(client, 2, country="BY", visibility="anonymous")
    api = client.get(f"/api/appeals/{SLUG}").json()["counts"]
    assert "BY" not in api["by_country"] and api["unattributed"] == 2
    _response, title, shown = badge(client, country="BY")
    assert shown.startswith("0 organisations") and "2" not in shown and "2" not in title.split("—")[0]
    # The total counts them, as the API's does.
    _response, _title, shown = badge(client)
    assert shown.startswith("2 organisations")
    # A third: now attributed to Belarus, on the API and the badge alike.
    add_endorsements(client, 1, country="BY", visibility="anonymous")
    assert client.get(f"/api/appeals/{SLUG}").json()["counts"]["by_country"]["BY"] == 3
    _response, _title, shown = badge(client, country="BY")
    assert shown.startswith("3 organisations")


def test_the_badge_revalidates_with_its_etag(client):
    response, _title, _shown = badge(client)
    etag = response.headers["etag"]
    assert "max-age=300" in response.headers["cache-control"]
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert "style-src" not in response.headers["content-security-policy"]  # presentation attributes only
    again = client.get(f"/appeals/{SLUG}/badge.svg", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    add_endorsements(client, 1, country="DE")
    changed = client.get(f"/appeals/{SLUG}/badge.svg", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_the_badge_speaks_the_requested_language(client):
    add_endorsements(client, 2, country="UA")
    _response, title, shown = badge(client, lang="uk")
    root_lang = ET.fromstring(client.get(f"/appeals/{SLUG}/badge.svg?lang=uk").content).get(
        "{http://www.w3.org/XML/1998/namespace}lang"
    )
    assert root_lang == "uk"
    assert "організації" in shown


def test_a_bad_country_is_a_400_and_an_unknown_appeal_a_404(client):
    assert client.get(f"/appeals/{SLUG}/badge.svg?country=ZZ").status_code == 400
    assert client.get(f"/appeals/{SLUG}/badge.svg?country=%3Cx%3E").status_code == 400
    assert client.get("/appeals/no-such-appeal/badge.svg").status_code == 404
