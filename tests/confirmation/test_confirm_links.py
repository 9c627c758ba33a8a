"""The link in the confirmation email: replayed, tampered, for another purpose, expired."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from petition.tokens import Purpose, Tokens
from tests.conftest import BASE_URL, TEST_SECRET
from tests.support import csrf_from, db_count, db_rows, links, wait_for_mail

EMAIL = "office@connection-ev.example"
WEEK = 7 * 24 * 3600


def endorse_and_get_link(site, smtp, email=EMAIL) -> str:
    assert site.endorse(contact_email=email).status_code == 303
    [message] = wait_for_mail(smtp, email)
    [link] = links(message, BASE_URL)
    return link.replace(BASE_URL, "")


def state(database_url) -> dict:
    [row] = db_rows(database_url, "SELECT state, confirmed_at, listed_at, token_nonce FROM endorsements")
    return row


def token_of(path: str) -> str:
    return path.split("/confirm/", 1)[1].split("?", 1)[0]


def signed_in_the_past(purpose: Purpose, payload: list, seconds_ago: int) -> str:
    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - seconds_ago

    return str(URLSafeTimedSerializer(TEST_SECRET, salt=purpose.value, signer=PastSigner).dumps(payload))


def post_confirm(client, path: str, page_path: str | None = None):
    page = client.get(page_path or "/appeals/protect-deserters")
    return client.post(path, data={"csrf_token": csrf_from(page.text)}, follow_redirects=False)


def test_get_shows_the_endorsement_and_never_confirms(site, client, smtp, database_url):
    path = endorse_and_get_link(site, smtp)
    for _ in range(3):
        page = client.get(path)
        assert page.status_code == 200
        assert "Connection e.V." in page.text
        assert f'action="/confirm/{token_of(path)}' in page.text
    client.head(path)
    assert state(database_url)["state"] == "pending"
    assert db_count(database_url, "outbox") == 1


def test_a_replayed_confirmation_is_friendly_and_changes_nothing(site, client, smtp, database_url):
    path = endorse_and_get_link(site, smtp)
    assert site.confirm(path).status_code == 303
    first = state(database_url)
    assert first["state"] == "confirmed"
    again = post_confirm(client, path)
    assert again.status_code == 303
    page = client.get(again.headers["location"])
    assert page.status_code == 200
    assert 'role="status"' in page.text
    assert state(database_url) == first
    # One confirmation email and one thank-you email, not a second thank-you.
    assert db_count(database_url, "outbox") == 2


def test_a_tampered_token_gets_a_clear_400_page(site, client, smtp, database_url):
    path = endorse_and_get_link(site, smtp)
    token = token_of(path)
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, token[:-5], token + "x", "not-a-token", "%C3%28", "%FF%FE", "a" * 2000):
        page = client.get(f"/confirm/{bad}")
        assert page.status_code == 400, bad
        assert "This link is not valid" in page.text
        assert page.headers["Cache-Control"] == "no-store"
        refused = post_confirm(client, f"/confirm/{bad}")
        assert refused.status_code == 400, bad
    assert state(database_url)["state"] == "pending"


def test_a_token_signed_for_another_purpose_is_refused(site, client, smtp, database_url):
    path = endorse_and_get_link(site, smtp)
    claims = Tokens(TEST_SECRET).read(Purpose.CONFIRM, token_of(path), max_age=None)
    for purpose in (Purpose.WITHDRAW, Purpose.DATA_REQUEST):
        other = Tokens(TEST_SECRET).make(purpose, endorsement_id=claims.endorsement_id, nonce=claims.nonce)
        assert client.get(f"/confirm/{other}").status_code == 400
        assert post_confirm(client, f"/confirm/{other}").status_code == 400
    # The CSRF signer's salt does not make a confirmation token either.
    assert client.get(f"/confirm/{csrf_from(client.get('/appeals/protect-deserters').text)}").status_code == 400
    assert state(database_url)["state"] == "pending"


def test_a_token_signed_with_another_secret_is_refused(site, client, smtp, database_url):
    path = endorse_and_get_link(site, smtp)
    claims = Tokens(TEST_SECRET).read(Purpose.CONFIRM, token_of(path), max_age=None)
    forged = Tokens("another-secret-of-some-length").make(
        Purpose.CONFIRM, endorsement_id=claims.endorsement_id, nonce=claims.nonce
    )
    assert post_confirm(client, f"/confirm/{forged}").status_code == 400
    assert state(database_url)["state"] == "pending"


def test_a_token_for_an_unknown_endorsement_or_nonce_is_refused(site, client, smtp, database_url):
    path = endorse_and_get_link(site, smtp)
    claims = Tokens(TEST_SECRET).read(Purpose.CONFIRM, token_of(path), max_age=None)
    tokens = Tokens(TEST_SECRET)
    for endorsement_id, nonce in (
        (claims.endorsement_id + 1000, claims.nonce),
        (claims.endorsement_id, "0" * 32),
    ):
        token = tokens.make(Purpose.CONFIRM, endorsement_id=endorsement_id, nonce=nonce)
        assert client.get(f"/confirm/{token}").status_code == 404
        assert post_confirm(client, f"/confirm/{token}").status_code == 404
    assert state(database_url)["state"] == "pending"


def test_an_expired_link_offers_a_fresh_one_that_works(site, client, smtp, database_url):
    path = endorse_and_get_link(site, smtp)
    claims = Tokens(TEST_SECRET).read(Purpose.CONFIRM, token_of(path), max_age=None)
    expired = signed_in_the_past(Purpose.CONFIRM, [claims.endorsement_id, claims.nonce], WEEK + 60)

    page = client.get(f"/confirm/{expired}")
    assert page.status_code == 410
    assert "This link has expired" in page.text
    assert "Send me a new link" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    # Pressing Confirm on an expired link confirms nothing either.
    assert post_confirm(client, f"/confirm/{expired}", f"/confirm/{expired}").status_code == 410
    assert state(database_url)["state"] == "pending"

    resend = client.post(
        "/confirm/resend",
        data={"csrf_token": csrf_from(page.text), "token": expired},
        follow_redirects=False,
    )
    assert resend.status_code == 303
    assert resend.headers["location"].startswith("/appeals/protect-deserters/check-email")
    first, fresh = wait_for_mail(smtp, EMAIL, count=2)
    assert fresh["Message-ID"] != first["Message-ID"]
    [fresh_link] = links(fresh, BASE_URL)
    assert site.confirm(fresh_link).status_code == 303
    assert state(database_url)["state"] == "confirmed"


def test_expiry_follows_the_setting(database_url, tmp_path, smtp):
    from starlette.testclient import TestClient

    from petition.app import create_app
    from tests.conftest import Site, make_settings

    settings = make_settings(database_url, tmp_path / "data", smtp, confirm_max_age=3600)
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        site = Site(client)
        path = endorse_and_get_link(site, smtp)
        claims = Tokens(TEST_SECRET).read(Purpose.CONFIRM, token_of(path), max_age=None)
        payload = [claims.endorsement_id, claims.nonce]
        assert client.get(f"/confirm/{signed_in_the_past(Purpose.CONFIRM, payload, 3000)}").status_code == 200
        assert client.get(f"/confirm/{signed_in_the_past(Purpose.CONFIRM, payload, 3700)}").status_code == 410


def test_resend_sends_nothing_for_a_confirmed_endorsement(site, client, smtp, database_url):
    path = endorse_and_get_link(site, smtp)
    site.confirm(path)
    wait_for_mail(smtp, EMAIL, count=2)
    page = client.get("/appeals/protect-deserters")
    response = client.post(
        "/confirm/resend",
        data={"csrf_token": csrf_from(page.text), "token": token_of(path)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert db_count(database_url, "outbox") == 2


@pytest.mark.parametrize("case", ["no token", "wrong token", "no cookie"])
def test_confirm_post_without_valid_csrf_is_forbidden(site, client, smtp, database_url, case):
    path = endorse_and_get_link(site, smtp)
    page = client.get(path)
    data = {"csrf_token": csrf_from(page.text)}
    if case == "no token":
        data = {}
    elif case == "wrong token":
        data = {"csrf_token": "forged"}
    else:
        client.cookies.clear()
    response = client.post(path, data=data, follow_redirects=False)
    assert response.status_code == 403
    assert state(database_url)["state"] == "pending"
    assert db_count(database_url, "outbox") == 1


@pytest.mark.parametrize("case", ["no token", "no cookie"])
def test_resend_post_without_valid_csrf_is_forbidden(site, client, smtp, database_url, case):
    path = endorse_and_get_link(site, smtp)
    page = client.get(path)
    data = {"token": token_of(path)}
    if case == "no cookie":
        data["csrf_token"] = csrf_from(page.text)
        client.cookies.clear()
    assert client.post("/confirm/resend", data=data, follow_redirects=False).status_code == 403
    assert db_count(database_url, "outbox") == 1


@pytest.mark.parametrize("token", ["", "garbage", "%FF"])
def test_resend_with_a_bad_token_is_a_4xx(site, client, database_url, token):
    page = client.get("/appeals/protect-deserters")
    response = client.post(
        "/confirm/resend",
        data={"csrf_token": csrf_from(page.text), "token": token},
        follow_redirects=False,
    )
    assert 400 <= response.status_code < 500
    assert db_count(database_url, "outbox") == 0
