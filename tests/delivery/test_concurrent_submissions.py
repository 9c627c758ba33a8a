"""A peak: 50 organisations submit at the same moment; every one is stored (SQLite: no "database is locked")."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx2

from tests.support import csrf_from, run_sql, valid_form, wait_for

SLUG = "protect-deserters"


def test_fifty_concurrent_submissions_are_all_stored(make_live, smtp, database_url):
    server = make_live(rate_limit_ip_burst=1000, rate_limit_ip_sustained=1000)

    def submit(i: int) -> int:
        with httpx2.Client(base_url=server.url, timeout=60) as browser:
            csrf = csrf_from(browser.get(f"/appeals/{SLUG}").text)
            form = valid_form(
                contact_email=f"peak{i}@org{i}.example", organisation_name=f"Peak Org {i}", csrf_token=csrf
            )
            return browser.post(f"/appeals/{SLUG}/endorse", data=form).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(submit, range(50)))
    assert statuses == [303] * 50
    rows = run_sql(database_url, "SELECT email_canonical, state FROM endorsements")
    assert sorted(r["email_canonical"] for r in rows) == sorted(f"peak{i}@org{i}.example" for i in range(50))
    assert {r["state"] for r in rows} == {"pending"}
    # And every confirmation email goes out, once.
    wait_for(lambda: len(smtp.messages) >= 50, timeout=60)
    assert len({m["Message-ID"] for m in smtp.messages}) == len(smtp.messages) == 50
