"""The appeal page (counts and the country chart) and the signatory list (filters, search, pages)."""

from __future__ import annotations

import re

from tests.factories import add_endorsements
from tests.support import csrf_from, valid_form

SLUG = "protect-deserters"


def _chart(html: str) -> str:
    match = re.search(r"<svg role=\"img\".*?</svg>", html, re.S)
    assert match, "no chart on the page"
    return match.group(0)


def test_appeal_page_shows_counts_and_a_chart_with_a_text_alternative(client):
    for i in range(3):
        add_endorsements(client, organisation_name=f"German Group {i}", country="DE")
    add_endorsements(client, organisation_name="French Group", country="FR")
    add_endorsements(client, visibility="anonymous", organisation_name="Quiet Group", country="UA")
    html = client.get(f"/appeals/{SLUG}").text
    assert "5 organisations have endorsed this appeal." in html
    assert "1 of them asked not to be named." in html
    svg = _chart(html)
    assert 'aria-labelledby="country-chart-title country-chart-desc"' in svg
    assert '<title id="country-chart-title">Endorsing organisations by country</title>' in svg
    # One anonymous organisation is not attributed to its country (below ANONYMOUS_COUNT_THRESHOLD).
    assert '<desc id="country-chart-desc">Germany: 3; France: 1; Other countries: 1</desc>' in svg
    assert svg.count('class="chart-bar"') == 3
    # Longest bar first; bars scale with the counts.
    widths = [float(w) for w in re.findall(r'class="chart-bar" x="\d+" y="\d+" width="([\d.]+)"', svg)]
    assert widths[0] > widths[1] == widths[2] and abs(widths[0] / widths[1] - 3) < 0.01
    # The same numbers as a table, anonymous ones included.
    assert re.search(r"<th scope=\"row\">Other countries</th><td class=\"num\">1</td><td class=\"num\">1</td>", html)
    # The CSP has no unsafe-inline: no style attributes, no inline scripts.
    assert " style=" not in html and "<script" not in html
    assert "German Group 2" in html  # the newest named endorsements


def test_many_countries_share_an_other_bar(client):
    codes = ["DE", "FR", "IT", "ES", "NL", "BE", "AT", "CH", "PL", "CZ", "SE", "DK", "NO", "FI", "IE", "PT", "GR", "LT"]
    for i, code in enumerate(codes):
        add_endorsements(client, organisation_name=f"Group {code}", country=code)
        if i < 2:
            add_endorsements(client, organisation_name=f"Second Group {code}", country=code)
    svg = _chart(client.get(f"/appeals/{SLUG}").text)
    assert svg.count('class="chart-bar"') == 15
    # Ties go alphabetically: the last four of the countries with one endorsement share a bar...
    assert "4 other countries" in svg
    picture = svg.split("</desc>")[1]
    assert "Poland" in picture and "Switzerland" not in picture and "Sweden" not in picture
    # ...and the table has every one.
    assert '<th scope="row">Switzerland</th>' in client.get(f"/appeals/{SLUG}").text


def test_no_chart_before_the_first_endorsement(client):
    html = client.get(f"/appeals/{SLUG}").text
    assert "0 organisations have endorsed this appeal." in html
    assert "<svg" not in html


def test_every_visitor_gets_their_own_csrf_token_from_the_cached_page(client):
    first = csrf_from(client.get(f"/appeals/{SLUG}").text)
    first_cookies = dict(client.cookies)
    client.cookies.clear()  # another visitor
    second = csrf_from(client.get(f"/appeals/{SLUG}").text)
    assert first != second and "csrf-" not in second
    response = client.post(
        f"/appeals/{SLUG}/endorse",
        data={**valid_form(contact_email="other@visitor.example"), "csrf_token": second},
        follow_redirects=False,
    )
    assert response.status_code == 303
    # A token from one visitor is no good for another.
    client.cookies.clear()
    client.cookies.update(first_cookies)
    response = client.post(
        f"/appeals/{SLUG}/endorse", data={**valid_form(), "csrf_token": second}, follow_redirects=False
    )
    assert response.status_code == 403


def test_signatories_grouped_by_country_with_filters_and_search(client):
    add_endorsements(
        client, organisation_name="Connection e.V.", country="DE", organisation_type="peace", city="Offenbach"
    )
    add_endorsements(client, organisation_name="Pro Asyl", country="DE", organisation_type="refugee_support")
    add_endorsements(client, organisation_name="Union syndicale", country="FR", organisation_type="union")
    add_endorsements(client, visibility="anonymous", organisation_name="Quiet Group", country="FR")
    html = client.get(f"/appeals/{SLUG}/signatories").text
    germany = html.index('<h2 id="c-DE">Germany</h2>')
    france = html.index('<h2 id="c-FR">France</h2>')
    # Countries in the reader's alphabetical order, organisations by name within each.
    assert france < html.index("Union syndicale") < germany < html.index("Connection e.V.") < html.index("Pro Asyl")
    # One anonymous organisation is not attributed to France (below ANONYMOUS_COUNT_THRESHOLD).
    assert "1 organisation from another country asked not to be named." in html

    by_country = client.get(f"/appeals/{SLUG}/signatories", params={"country": "FR"}).text
    assert "Union syndicale" in by_country and "Pro Asyl" not in by_country
    assert "1 named organisation matches." in by_country
    assert "asked not to be named." not in by_country

    by_type = client.get(f"/appeals/{SLUG}/signatories", params={"type": "refugee_support"}).text
    assert "Pro Asyl" in by_type and "Connection" not in by_type and "Union syndicale" not in by_type

    # Search ignores case, accents and punctuation.
    found = client.get(f"/appeals/{SLUG}/signatories", params={"q": "CONNECTION ev"}).text
    assert "Connection e.V." in found and "Pro Asyl" not in found

    assert client.get(f"/appeals/{SLUG}/signatories", params={"country": "XX"}).status_code == 400
    assert client.get(f"/appeals/{SLUG}/signatories", params={"page": "-1"}).status_code == 400
    assert client.get("/appeals/no-such-appeal/signatories").status_code == 404


def test_signatories_are_paginated(client):
    for i in range(55):
        add_endorsements(client, organisation_name=f"Group {i:02d}", country="NL")
    first = client.get(f"/appeals/{SLUG}/signatories").text
    assert "Page 1 of 2" in first and "Group 49" in first and "Group 50" not in first
    next_link = re.search(r'<a rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert next_link == f"/appeals/{SLUG}/signatories?page=2"
    second = client.get(next_link).text
    assert "Page 2 of 2" in second and "Group 54" in second and "Group 49" not in second
    assert 'rel="prev"' in second and 'rel="next"' not in second
    # Filters stay in the page links.
    filtered = client.get(f"/appeals/{SLUG}/signatories", params={"country": "NL", "lang": "de"}).text
    assert "country=NL" in re.search(r'<a rel="next" href="([^"]+)"', filtered).group(1)
    assert "lang=de" in re.search(r'<a rel="next" href="([^"]+)"', filtered).group(1)
    beyond = client.get(f"/appeals/{SLUG}/signatories", params={"page": "9"}).text
    assert "No named organisation matches yet." in beyond


def test_signatories_open_data_links_carry_the_filters(client):
    add_endorsements(client, organisation_name="Group", country="NL")
    html = client.get(f"/appeals/{SLUG}/signatories", params={"country": "NL", "type": "peace"}).text
    assert f'href="/api/appeals/{SLUG}/endorsements?country=NL&amp;type=peace"' in html
    assert f'href="/appeals/{SLUG}/endorsements.csv?country=NL&amp;type=peace"' in html
