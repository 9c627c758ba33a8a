"""The endorsement list puts the newest first; closing an appeal asks first; right-to-left names,
cities and comments are isolated wherever the organiser area shows them."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

from petition.appeals.queries import get_appeal
from petition.appeals.states import Moderation
from tests.factories import add_endorsements
from tests.organisers.support import audit_rows, csrf, login_as, make_appeal, run


def _ids_on(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'name="ids" value="(\d+)"', html)]


def test_the_newest_endorsement_comes_first_and_the_page_says_so(client):
    appeal = make_appeal(client, "ordered", moderation=Moderation.PRE)
    earlier = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)
    [old] = add_endorsements(client, appeal=appeal["id"], created_at=earlier, organisation_name="First In")
    [new] = add_endorsements(
        client, appeal=appeal["id"], created_at=earlier + dt.timedelta(hours=1), organisation_name="Spam Just Now"
    )
    login_as(client, "moderator")
    for path in ("/admin/endorsements", "/admin/moderation"):
        page = client.get(path)
        assert _ids_on(page.text) == [new, old], path
        assert "sorted by submission, newest first" in page.text
    # With one a page, the newest is alone on the first page.
    assert _ids_on(client.get("/admin/endorsements?per_page=50&page=1").text)[0] == new
    oldest = client.get("/admin/endorsements?sort=oldest")
    assert _ids_on(oldest.text) == [old, new]
    assert "sorted by submission, oldest first" in oldest.text
    assert client.get("/admin/endorsements?sort=sideways").status_code == 400


def test_closing_an_appeal_takes_a_confirmation(client):
    appeal = make_appeal(client, "closable")
    login_as(client, "admin")
    page = client.get(f"/admin/appeals/{appeal['id']}")
    assert 'name="confirm_close"' in page.text
    token = csrf(client, "/admin/")
    url = f"/admin/appeals/{appeal['id']}/status"

    unconfirmed = client.post(url, data={"csrf_token": token, "status": "closed"}, follow_redirects=False)
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm that the appeal should close." in unconfirmed.text
    assert 'aria-invalid="true"' in unconfirmed.text
    assert run(client, get_appeal, slug="closable")["status"] == "open"
    assert audit_rows(client, "appeal.status") == []

    confirmed = client.post(
        url, data={"csrf_token": token, "status": "closed", "confirm_close": "yes"}, follow_redirects=False
    )
    assert confirmed.status_code == 303
    assert run(client, get_appeal, slug="closable")["status"] == "closed"
    [row] = audit_rows(client, "appeal.status")
    assert row["detail"] == "open -> closed"
    # Pausing and opening again need no confirmation.
    reopened = client.post(url, data={"csrf_token": token, "status": "open"}, follow_redirects=False)
    assert reopened.status_code == 303 and run(client, get_appeal, slug="closable")["status"] == "open"


ARABIC_NAME = "جمعية السلام"
HEBREW_CITY = "תל אביב"
ARABIC_COMMENT = "نحن نؤيد هذا النداء."


class _Isolation(HTMLParser):
    """Where right-to-left values appear: each must be the content of a <bdi> or of an element
    with dir="auto" (or the value of an input with it). The page's own dir="ltr" isolates nothing."""

    def __init__(self, values: tuple[str, ...]) -> None:
        super().__init__()
        self.values = values
        self.stack: list[tuple[str, bool]] = []
        self.found: list[str] = []
        self.bare: list[str] = []

    def _isolated(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        isolates = tag == "bdi" or names.get("dir") in ("auto", "rtl")
        for value in self.values:
            if value in (names.get("value") or ""):
                self.found.append(value)
                if not isolates:
                    self.bare.append(f"<{tag}> value {value}")
        if tag not in ("input", "br", "meta", "link", "img"):
            self.stack.append((tag, isolates))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            open_tag, _isolates = self.stack.pop()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for value in self.values:
            if value in data:
                self.found.append(value)
                if not self._isolated():
                    self.bare.append(f"text {data.strip()[:60]!r} in <{self.stack[-1][0] if self.stack else ''}>")


def _check(html: str, values: tuple[str, ...]) -> tuple[list[str], list[str]]:
    parser = _Isolation(values)
    parser.feed(html)
    return parser.found, parser.bare


def test_right_to_left_names_cities_and_comments_are_isolated(client):
    appeal = make_appeal(client, "bidi", moderation=Moderation.PRE)
    [eid] = add_endorsements(
        client,
        appeal=appeal["id"],
        organisation_name=ARABIC_NAME,
        city=HEBREW_CITY,
        comment=ARABIC_COMMENT,
        contact_name="سارة",
    )
    login_as(client, "admin")
    found, bare = _check(client.get("/admin/moderation").text, (ARABIC_NAME, HEBREW_CITY))
    assert set(found) == {ARABIC_NAME, HEBREW_CITY} and bare == [], bare
    token = csrf(client, "/admin/")
    # A correction and a decision, so the audit log names the endorsement.
    client.post(
        f"/admin/endorsements/{eid}",
        data={
            "csrf_token": token,
            "organisation_name": ARABIC_NAME,
            "country": "DE",
            "city": HEBREW_CITY,
            "organisation_type": "peace",
            "website": "",
            "comment": ARABIC_COMMENT,
        },
    )
    client.post(f"/admin/endorsements/{eid}/decision", data={"csrf_token": token, "decision": "approve"})
    pages = {
        "/admin/endorsements": (ARABIC_NAME, HEBREW_CITY, ARABIC_COMMENT[:20], "سارة"),
        f"/admin/endorsements/{eid}": (ARABIC_NAME, HEBREW_CITY, ARABIC_COMMENT, "سارة"),
        "/admin/audit": (ARABIC_NAME,),
        "/admin/": (ARABIC_NAME,),
    }
    for path, values in pages.items():
        page = client.get(path)
        found, bare = _check(page.text, values)
        assert set(found) == set(values), (path, found)
        assert bare == [], (path, bare)
