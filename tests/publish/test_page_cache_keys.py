"""The page cache holds one entry per page a visitor can get, not one per way of spelling its URL."""

from __future__ import annotations

import re

from petition.publish.cache import public_cache
from tests.factories import add_endorsements

SLUG = "protect-deserters"


def _cache_size(client) -> int:
    class _Request:  # what public_cache reads: the services of this app
        state = client.app.state

    return len(public_cache(_Request()))  # type: ignore[arg-type]


def _html_lang(html: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', html)
    assert match
    return match.group(1)


def test_an_unknown_lang_does_not_grow_the_page_cache(client):
    add_endorsements(client, organisation_name="Connection e.V.", country="DE")
    pages = [f"/appeals/{SLUG}", f"/appeals/{SLUG}/signatories"]
    for path in pages:
        for query in ("", "?lang=de"):
            assert client.get(path + query).status_code == 200
    client.get(f"/appeals/{SLUG}/signatories?page=1&country=DE")
    filled = _cache_size(client)

    # Each spelling of `lang`, and the language of the page it gets.
    spellings = {
        "?lang=zz": "en",
        "?lang=xx-yy": "en",
        "?lang=%F0%9F%92%A5": "en",
        "?lang=" + "a" * 200: "en",
        "?lang=": "en",
        "?lang=en-GB": "en",
        "?lang=DE": "de",
        "?lang=%20de%20": "de",
    }
    for query, language in spellings.items():
        for path in pages:
            response = client.get(path + query, headers={"Accept-Language": "en"})
            assert response.status_code == 200, (path, query)
            assert _html_lang(response.text) == language, (path, query)
        assert _cache_size(client) == filled, f"{query!r} made new cache entries"

    # Nor do other spellings of the same signatory page.
    for query in ("?page=01&country=de", "?country=DE&page=1", "?country=de&page=+1&lang=qq"):
        assert client.get(f"/appeals/{SLUG}/signatories{query}").status_code == 200
    assert _cache_size(client) == filled

    # The page asked for in an unknown language is the negotiated one, and keeps no ?lang=zz in its links.
    german = client.get(f"/appeals/{SLUG}/signatories?lang=zz", headers={"Accept-Language": "de"}).text
    assert _html_lang(german) == "de" and "lang=zz" not in german
