"""No email address or token reaches the logs, whatever a person does on the site."""

from __future__ import annotations

import logging

from tests.conftest import BASE_URL
from tests.support import csrf_from, links, wait_for, wait_for_mail


def app_log_text(caplog) -> str:
    lines = []
    for record in caplog.records:
        # aiosmtpd's log is the test's mail server and httpx's the test's browser, not the application.
        if record.name.startswith(("mail.log", "httpx")):
            continue
        lines.append(record.getMessage())
        if record.exc_text:
            lines.append(record.exc_text)
    return "\n".join(lines)


def test_whole_flows_log_no_address_and_no_token(make_site, smtp, caplog):
    caplog.set_level(logging.DEBUG)
    site = make_site(rate_limit_ip_burst=6)
    addresses = ["Logged.Person@private.example", "second@private.example"]
    site.endorse(contact_email=addresses[0], contact_name="Private Person")
    site.endorse(contact_email=addresses[1], country="ZZ")  # a form error
    site.endorse(contact_email=addresses[1])
    [confirmation] = wait_for_mail(smtp, addresses[0])
    [confirm_link] = links(confirmation, BASE_URL)
    site.confirm(confirm_link)
    thank_you = wait_for_mail(smtp, addresses[0], count=2)[1]
    withdraw_link = next(u for u in links(thank_you, BASE_URL) if "/withdraw/" in u)
    page = site.client.get(withdraw_link.replace(BASE_URL, ""))
    site.client.post(withdraw_link.replace(BASE_URL, ""), data={"csrf_token": csrf_from(page.text)})
    form = site.client.get("/privacy/data")
    site.client.post("/privacy/data", data={"contact_email": addresses[0], "csrf_token": csrf_from(form.text)})
    data_link = links(wait_for_mail(smtp, addresses[0], count=3)[2], BASE_URL)[0]
    assert site.client.get(data_link.replace(BASE_URL, "")).status_code == 200
    # Held by the burst limit, and an invalid link.
    for i in range(4):
        site.endorse(contact_email=f"held{i}@private.example")
    site.client.get("/confirm/not-a-token")
    wait_for(lambda: len(smtp.messages) >= 4)

    text = app_log_text(caplog)
    assert "outbox" in text  # the worker did log: the check below is not vacuous
    secrets = [*addresses, addresses[0].lower(), "private.example", "Private Person"]
    for link in (confirm_link, withdraw_link, data_link):
        secrets.append(link.rsplit("/", 1)[1].split("?")[0])
    for secret in secrets:
        assert secret not in text, f"{secret!r} appears in the logs"
