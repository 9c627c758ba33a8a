"""An organiser form that comes back with errors says so first in the page's title, as the public
form does: a screen reader announces the title on load, before anything else on the page."""

from __future__ import annotations

import re
from html import unescape

from tests.organisers.support import add_organiser, csrf, login, login_as


def _title(html: str) -> str:
    match = re.search(r"<title>(.*?)</title>", html, re.S)
    assert match, html[:300]
    return unescape(" ".join(match.group(1).split()))


def test_a_wrong_password_titles_the_login_page_as_an_error_in_the_organisers_language(client):
    add_organiser(client, "ada@organisers.example", "admin")
    assert not _title(client.get("/admin/login").text).startswith("Error:")

    wrong = login(client, "ada@organisers.example", "not the password at all", expect=400)
    assert _title(wrong.text).startswith("Error: "), _title(wrong.text)

    page = client.get("/admin/login?lang=de")
    german = client.post(
        "/admin/login?lang=de",
        data={
            "email": "ada@organisers.example",
            "password": "still not it",
            "csrf_token": csrf(client, "/admin/login?lang=de"),
        },
        follow_redirects=False,
    )
    assert page.status_code == 200
    assert german.status_code == 400
    assert _title(german.text).startswith("Fehler: "), _title(german.text)


def test_a_rejected_form_in_the_area_is_titled_as_an_error_and_a_clean_page_is_not(client):
    login_as(client, "admin")
    clean = client.get("/admin/account/password")
    assert not _title(clean.text).startswith("Error:"), _title(clean.text)

    mismatch = client.post(
        "/admin/account/password",
        data={
            "current_password": "wrong",
            "new_password": "a long enough new password",
            "new_password_confirm": "a different long password",
            "csrf_token": csrf(client, "/admin/account/password"),
        },
        follow_redirects=False,
    )
    assert mismatch.status_code == 400, mismatch.status_code
    assert _title(mismatch.text).startswith("Error: "), _title(mismatch.text)
