"""An organiser approves, builds and downloads a signed dossier that the public page accepts;
a contact withdraws with the link from the thank-you email. With and without JavaScript."""

from __future__ import annotations

import time

from petition.appeals.queries import create_appeal, save_text
from petition.appeals.states import AppealStatus, Moderation
from petition.organisers.passwords import hash_password
from petition.organisers.queries import create_organiser
from petition.organisers.roles import Role
from tests.journeys.test_browser_endorse import fill_endorsement
from tests.support import links, wait_for_mail

PASSWORD = "a long organiser password"


def run(live_server, coroutine_fn, **kwargs):
    """Run a query on the live server's own event loop."""
    import asyncio

    loop = live_server.loop
    return asyncio.run_coroutine_threadsafe(coroutine_fn(live_server.services.db, **kwargs), loop).result(30)


def endorse_and_confirm(page, live_server, smtp, *, slug, name, email, country="DE"):
    page.goto(f"{live_server.url}/appeals/{slug}")
    fill_endorsement(page, name=name, country=country, city="Berlin", email=email)
    page.click("main button[type=submit]")
    page.wait_for_url("**/check-email**")
    [message] = wait_for_mail(smtp, email)
    page.goto(links(message, live_server.url)[0])
    with page.expect_navigation():
        page.click("main button[type=submit]")


def test_organiser_approves_builds_a_dossier_and_the_public_verifies_it(live_server, smtp, page, shots, tmp_path):
    async def setup(db):
        appeal_id = await create_appeal(db, slug="pre-appeal", moderation=Moderation.PRE, status=AppealStatus.OPEN)
        await save_text(
            db,
            appeal_id=appeal_id,
            language="en",
            title="Protect those who refuse to kill",
            addressees="The members of the Bundestag",
            body="We ask you to **protect** them.",
        )
        await create_organiser(
            db, email="organiser@petition.example", password_hash=hash_password(PASSWORD), role=Role.MODERATOR
        )

    run(live_server, setup)
    endorse_and_confirm(
        page, live_server, smtp, slug="pre-appeal", name="Pax Christi Berlin", email="office@paxchristi.example"
    )
    page.goto(f"{live_server.url}/appeals/pre-appeal/signatories")
    assert page.get_by_text("Pax Christi Berlin").count() == 0  # waiting for review

    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login" in page.url
    page.fill("input[name=email]", "organiser@petition.example")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    shots("dashboard")
    page.goto(f"{live_server.url}/admin/moderation")
    shots("moderation-queue")
    page.check("input[name=ids]")
    with page.expect_navigation():
        page.click("button[name=decision][value=approve]")
    shots("approved")
    page.goto(f"{live_server.url}/appeals/pre-appeal/signatories")
    assert page.get_by_text("Pax Christi Berlin").count() == 1

    page.goto(f"{live_server.url}/admin/dossiers")
    page.select_option("#f-appeal-choice", label="Protect those who refuse to kill")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    page.select_option("#f-country", "DE")
    with page.expect_navigation():
        page.click("form.narrow button[type=submit]")
    shots("dossier-queued")
    deadline = time.monotonic() + 180
    while page.locator("a", has_text="Download").count() == 0:
        assert time.monotonic() < deadline, "the dossier was not built in time"
        time.sleep(1)
        page.reload()
    shots("dossier-built")
    with page.expect_download() as download_info:
        page.locator("td a", has_text="Download").first.click()
    pdf = tmp_path / "dossier-DE.pdf"
    download_info.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")

    page.goto(f"{live_server.url}/verify")
    page.set_input_files("#dossier", str(pdf))
    with page.expect_navigation():
        page.click("form.verify-form button[type=submit]")
    shots("verified")
    good = page.locator(".verdict .check.good")
    assert good.count() >= 3, page.content()
    assert page.locator(".verdict .check.bad").count() == 0

    tampered = tmp_path / "tampered.pdf"
    data = bytearray(pdf.read_bytes())
    at = data.index(b"Pax Christi Berlin") if b"Pax Christi Berlin" in data else len(data) // 3
    data[at] ^= 0x01
    tampered.write_bytes(bytes(data))
    page.goto(f"{live_server.url}/verify")
    page.set_input_files("#dossier", str(tampered))
    with page.expect_navigation():
        page.click("form.verify-form button[type=submit]")
    shots("tampered-rejected")
    assert page.locator(".verdict .check.bad").count() >= 1


def test_withdrawal_link_removes_the_organisation_from_the_list(live_server, smtp, page, shots):
    endorse_and_confirm(
        page, live_server, smtp, slug="protect-deserters", name="Quäker Hilfe Kassel", email="buero@quaeker.example"
    )
    page.goto(f"{live_server.url}/appeals/protect-deserters/signatories")
    assert page.get_by_text("Quäker Hilfe Kassel").count() == 1
    thank_you = wait_for_mail(smtp, "buero@quaeker.example", count=2)[-1]
    [withdraw_link] = [u for u in links(thank_you, live_server.url) if "/withdraw/" in u]
    page.goto(withdraw_link)
    shots("withdraw-page")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    shots("withdrawn")
    page.goto(f"{live_server.url}/appeals/protect-deserters/signatories")
    assert page.get_by_text("Quäker Hilfe Kassel").count() == 0
    response = page.request.get(f"{live_server.url}/api/appeals/protect-deserters")
    assert response.json()["counts"]["total"] == 0


def test_an_organiser_turns_on_two_step_login_and_logs_in_with_a_code(live_server, smtp, page, shots, javascript):
    import pyotp

    from tests.journeys.conftest import axe_violations

    async def setup(db):
        await create_organiser(
            db, email="totp@petition.example", password_hash=hash_password(PASSWORD), role=Role.MODERATOR
        )
        await create_organiser(
            db, email="admin@petition.example", password_hash=hash_password(PASSWORD), role=Role.ADMIN
        )

    run(live_server, setup)
    blocked = []
    page.on(
        "console", lambda message: blocked.append(message.text) if "Content Security Policy" in message.text else None
    )

    def log_in(email: str = "totp@petition.example") -> None:
        page.goto(f"{live_server.url}/admin/")
        assert "/admin/login" in page.url
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("main button[type=submit]")

    log_in()
    page.click("nav.admin-nav a[href='/admin/account/two-step']")
    page.wait_for_url("**/admin/account/two-step")
    shots("two-step-setup")
    secret = page.inner_text("#totp-secret").replace(" ", "")
    qr = page.locator("main img")
    assert qr.get_attribute("src").startswith("data:image/svg+xml;base64,") and qr.get_attribute("alt")
    if javascript:
        assert page.evaluate("document.querySelector('main img').naturalWidth") > 0  # the CSP let it load
        assert axe_violations(page) == []
    page.fill("#f-code", pyotp.TOTP(secret).now())
    with page.expect_navigation():
        page.click("form[action='/admin/account/two-step'] button[type=submit]")
    shots("recovery-codes")
    codes = page.locator("main li code").all_inner_texts()
    assert len(codes) == 10
    with page.expect_navigation():
        page.click("nav.admin-nav .logout button")

    # The password alone now leads to the code form, not into the organiser area.
    log_in()
    assert "/admin/login" in page.url and page.locator("#f-code").count() == 1
    assert page.locator("input[type=password]").count() == 0
    shots("code-step")
    if javascript:
        assert axe_violations(page) == []
    page.fill("#f-code", pyotp.TOTP(secret).at(time.time() + 30))  # the enrolment used this step's code
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.url.rstrip("/").endswith("/admin")
    assert page.locator("h1", has_text="Dashboard").count() == 1
    shots("dashboard-after-code")

    # And a recovery code works instead of the app, once.
    with page.expect_navigation():
        page.click("nav.admin-nav .logout button")
    log_in()
    page.fill("#f-code", codes[0])
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.url.rstrip("/").endswith("/admin")

    # The phone is lost after all: an admin resets the moderator's two-step login.
    with page.expect_navigation():
        page.click("nav.admin-nav .logout button")
    log_in("admin@petition.example")
    page.goto(f"{live_server.url}/admin/organisers/two-step")
    if javascript:
        assert axe_violations(page) == []
    with page.expect_navigation():
        page.click("main table button[type=submit]")  # the one organiser with two-step login on
    shots("two-step-reset")
    assert page.locator(".notice", has_text="was reset").count() == 1
    with page.expect_navigation():
        page.click("nav.admin-nav .logout button")
    log_in()
    assert page.url.rstrip("/").endswith("/admin")  # the password alone again
    assert blocked == []
