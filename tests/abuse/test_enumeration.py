"""The endorse form tells nobody whether an address is new, pending or has already endorsed."""

from __future__ import annotations

import statistics
import time

from tests.conftest import BASE_URL
from tests.support import csrf_from, links, valid_form, wait_for_mail

SLUG = "protect-deserters"
# Differ between any two answers, and say nothing of the address: a cookie, the time, the request id.
IGNORED = {"set-cookie", "date", "content-length", "x-request-id"}


def test_new_pending_and_confirmed_addresses_look_the_same(make_site, smtp):
    site = make_site(
        rate_limit_email=1000, rate_limit_ip_burst=1000, rate_limit_ip_sustained=1000, rate_limit_domain=1000
    )
    client = site.client
    site.endorse(contact_email="pending@enum.example")
    site.endorse(contact_email="confirmed@enum.example")
    link = links(wait_for_mail(smtp, "confirmed@enum.example")[0], BASE_URL)[0]
    site.confirm(link)
    csrf = csrf_from(client.get(f"/appeals/{SLUG}").text)

    def submit(email: str):
        form = valid_form(contact_email=email, csrf_token=csrf)
        started = time.perf_counter()
        answer = client.post(f"/appeals/{SLUG}/endorse", data=form, follow_redirects=False)
        elapsed = time.perf_counter() - started
        return answer, elapsed

    kinds = {"new": [], "pending": [], "confirmed": []}
    answers = {}
    for i in range(15):  # interleaved, so machine noise hits all three alike
        for kind in kinds:
            email = f"new{i}@enum.example" if kind == "new" else f"{kind}@enum.example"
            answer, elapsed = submit(email)
            kinds[kind].append(elapsed)
            answers.setdefault(kind, answer)

    def shape(answer):
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in IGNORED}
        return answer.status_code, headers, answer.content

    assert shape(answers["new"]) == shape(answers["pending"]) == shape(answers["confirmed"])
    assert answers["new"].status_code == 303
    followed = {kind: client.get(answers[kind].headers["location"]) for kind in kinds}
    assert len({(r.status_code, r.text) for r in followed.values()}) == 1

    medians = {kind: statistics.median(times) for kind, times in kinds.items()}
    fastest, slowest = min(medians.values()), max(medians.values())
    # Generous: the same work is done in each case, so medians stay within noise of each other.
    assert slowest <= 2 * fastest + 0.010, medians
    # Each of them did get an email (a different one for the confirmed address).
    wait_for_mail(smtp, "confirmed@enum.example", count=3)
    assert "already" in smtp.sink.to("confirmed@enum.example")[2]["Subject"].lower()
