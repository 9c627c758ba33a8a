"""Cached public pages answered before routing (petition.publish.pages.CachedPageMiddleware):
the same answer as the handler's, never a stale one after a change this process made."""

from __future__ import annotations

import gzip
import zlib

import pytest

from petition.publish.pages import CachedPageMiddleware
from petition.security import CSRF_COOKIE
from tests.conftest import BASE_URL
from tests.factories import add_endorsements, forget_cached
from tests.support import comparable, csrf_from, links, valid_form, wait_for_mail

SLUG = "protect-deserters"


@pytest.fixture
def served_early(monkeypatch):
    """The paths the middleware answered itself (rather than passing them on)."""
    answered: list[str] = []
    find = CachedPageMiddleware._find

    def spy(self, scope):
        page = find(self, scope)
        if page is not None:
            answered.append(scope["path"])
        return page

    monkeypatch.setattr(CachedPageMiddleware, "_find", spy)
    return answered


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (f"/appeals/{SLUG}", {}),
        (f"/appeals/{SLUG}?lang=de", {}),
        (f"/ru/appeals/{SLUG}", {}),
        (f"/appeals/{SLUG}", {"Accept-Language": "fr;q=0.9, uk"}),
        (f"/appeals/{SLUG}?lang=zz", {"Accept-Language": "de"}),
        (f"/appeals/{SLUG}/signatories", {}),
        (f"/appeals/{SLUG}/signatories?country=de&page=01&lang=uk", {}),
        (f"/appeals/{SLUG}/signatories?type=peace", {"Accept-Language": "fr"}),
        (f"/api/appeals/{SLUG}", {}),
        (f"/api/appeals/{SLUG}?lang=de", {}),
        (f"/api/appeals/{SLUG}", {"Accept-Language": "uk", "Accept-Encoding": "identity"}),
        # A client that does not accept gzip (the test client's default does): the same
        # headers, `Vary: Accept-Encoding` included, whoever answers.
        (f"/appeals/{SLUG}", {"Accept-Encoding": "identity"}),
        (f"/appeals/{SLUG}/signatories?country=de", {"Accept-Encoding": "br"}),
        # gzip's layer reads the first Accept-Encoding alone: so does the cache.
        (f"/appeals/{SLUG}", [("Accept-Encoding", "identity"), ("Accept-Encoding", "gzip")]),
        (f"/appeals/{SLUG}", [("Accept-Encoding", "gzip"), ("Accept-Encoding", "identity")]),
    ],
)
def test_a_page_from_the_cache_is_the_page_the_handler_sends(client, served_early, path, headers):
    add_endorsements(client, organisation_name="Connection e.V.", country="DE", organisation_type="peace")
    for returning in (False, True):
        forget_cached(client)
        client.cookies.clear()
        if returning:
            client.cookies.set(CSRF_COOKIE, "a-returning-visitors-secret-0123456789")
        served_early.clear()
        rendered = client.get(path, headers=headers)  # not in the cache yet: the handler renders it
        assert served_early == [] and rendered.status_code == 200
        if not returning:
            client.cookies.clear()  # a new visitor again
        cached = client.get(path, headers=headers)
        assert served_early == [path.split("?")[0]]
        assert comparable(cached) == comparable(rendered)  # every header in its place
        has_form = 'name="csrf_token"' in rendered.text
        for response in (rendered, cached):
            # A new visitor of a page with a form gets a cookie; the token in the form is theirs.
            assert ("set-cookie" in response.headers) == (has_form and not returning)
            if has_form:
                assert response.headers.get("set-cookie", "").endswith("; Path=/; HttpOnly; SameSite=Lax") or returning
                assert "csrf-" not in csrf_from(response.text)
        if has_form and not returning:
            # The token from the cache works, with the cookie that came with it.
            client.cookies.clear()
            client.cookies.set(CSRF_COOKIE, cached.cookies[CSRF_COOKIE])
            posted = client.post(
                f"/appeals/{SLUG}/endorse",
                data={**valid_form(contact_email="other@visitor.example"), "csrf_token": csrf_from(cached.text)},
                follow_redirects=False,
            )
            assert posted.status_code == 303


@pytest.mark.parametrize("path", [f"/appeals/{SLUG}", f"/appeals/{SLUG}/signatories"])
def test_a_client_that_accepts_gzip_gets_the_cached_page_compressed_once_not_per_request(
    client, served_early, monkeypatch, path
):
    # Compressing the appeal page for every browser cost the server ten times sending it
    # (docs/benchmarks.md): the cached copy is compressed once, each visitor's token put in.
    add_endorsements(client, organisation_name="Connection e.V.", country="DE")
    forget_cached(client)
    client.get(path, headers={"Accept-Encoding": "identity"})  # rendered and stored, not compressed
    compressors: list[int] = []  # each compressor made, by its window bits (gzip's: 31)
    make = zlib.compressobj

    def counted(level=-1, method=zlib.DEFLATED, wbits=zlib.MAX_WBITS, *args, **kwargs):
        compressors.append(wbits)
        return make(level, method, wbits, *args, **kwargs)

    monkeypatch.setattr(zlib, "compressobj", counted)
    served_early.clear()
    bodies, tokens = set(), set()
    made_by_the_first: list[int] = []
    for visitor in range(5):
        client.cookies.clear()  # a new visitor each time
        with client.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response:
            raw = b"".join(response.iter_raw())
        assert response.status_code == 200 and response.headers["content-encoding"] == "gzip"
        assert int(response.headers["content-length"]) == len(raw)
        page = gzip.decompress(raw).decode()  # strictly: the CRC-32 and the length checked
        assert "Connection e.V." in page
        bodies.add(raw)
        if visitor == 0:
            made_by_the_first = list(compressors)
        if 'name="csrf_token"' in page:
            token = csrf_from(page)
            tokens.add(token)
            # The token works with the cookie that came with it.
            posted = client.post(
                f"/appeals/{SLUG}/endorse",
                data={**valid_form(contact_email=f"visitor{len(tokens)}@example.org"), "csrf_token": token},
                follow_redirects=False,
            )
            assert posted.status_code == 303
    assert served_early == [path] * 5
    # Not one compression a request (gzip's layer makes a gzip compressor, window bits 31, for
    # each): the stored copy's parts, once, for the first of them, and none after.
    assert made_by_the_first and compressors == made_by_the_first
    assert 16 + zlib.MAX_WBITS not in compressors
    if path.endswith("/signatories"):
        assert len(bodies) == 1  # the same bytes for everyone
        assert response.headers["etag"].startswith('W/"')
    else:
        assert len(tokens) == 5 and len(bodies) == 5


def test_what_the_cache_does_not_answer_goes_to_the_handler(client, served_early):
    add_endorsements(client, organisation_name="Connection e.V.", country="DE")
    page = f"/appeals/{SLUG}/signatories"
    first = client.get(page)
    etag = first.headers["etag"]
    served_early.clear()
    assert client.get(page, headers={"If-None-Match": etag}).status_code == 304
    assert client.head(page).status_code == 200
    assert "Connection e.V." in client.get(page, params={"q": "connection"}).text
    assert client.get(page, params={"country": "XX"}).status_code == 400
    assert client.get(page, params={"page": "0"}).status_code == 400
    assert client.get(page + "?lang=%00").status_code == 400
    assert client.get(f"/appeals/{SLUG}", params={"utm_source": "x"}).status_code == 200
    assert client.get("/appeals/no-such-appeal").status_code == 404
    counts = f"/api/appeals/{SLUG}"
    etag = client.get(counts).headers["etag"]
    served_early.clear()
    assert client.get(counts, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(counts, params={"callback": "x"}).json()["slug"] == SLUG
    assert client.get("/api/appeals/no-such-appeal").status_code == 404
    assert served_early == []


def test_a_confirmed_endorsement_shows_at_once_on_the_cached_pages(site, smtp, client, served_early):
    pages = [f"/appeals/{SLUG}", f"/appeals/{SLUG}/signatories"]
    counts = f"/api/appeals/{SLUG}"
    for path in pages:
        client.get(path)
        assert "Union syndicale" not in client.get(path).text
    client.get(counts)
    before = client.get(counts).json()["counts"]
    assert served_early == [*pages, counts]  # the second view of each came from the cache

    assert site.endorse(organisation_name="Union syndicale", contact_email="union@example.org").status_code == 303
    [message] = wait_for_mail(smtp, "union@example.org")
    [link] = links(message, BASE_URL)
    assert site.confirm(link).status_code == 303

    # The cache's lifetime has not passed, but this process dropped the pages when it listed the endorsement.
    served_early.clear()
    for path in pages:
        assert "Union syndicale" in client.get(path).text
        assert "Union syndicale" in client.get(path).text
    for _view in range(2):
        after = client.get(counts).json()["counts"]
        assert after["total"] == before["total"] + 1
        assert after["by_country"].get("DE", 0) == before["by_country"].get("DE", 0) + 1
    assert served_early == [*pages, counts]


def test_one_path_is_served_early_in_each_language_asked_for(client, served_early):
    # Which page a request asks for is remembered by its path, query and Accept-Language:
    # the same path in other languages is still each its own page.
    path = f"/appeals/{SLUG}"
    asked = [({"Accept-Language": "de"}, "de"), ({"Accept-Language": "fr"}, "fr"), ({}, "en")]
    for _round in range(2):  # rendered (and remembered), then from the cache
        for headers, language in asked * 2:
            answer = client.get(path, headers=headers)
            assert answer.headers["content-language"] == language
        client.get(path + "?lang=uk")
        assert client.get(path + "?lang=uk").headers["content-language"] == "uk"
    assert served_early.count(path) >= 6
