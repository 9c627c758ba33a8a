"""/metrics: Prometheus text for TRUSTED_IPS or the bearer METRICS_TOKEN; nobody else learns it exists."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BASE_URL
from tests.support import links, wait_for, wait_for_mail

TOKEN = "metrics-token-0123456789abcdef"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample, keyed by its name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_counts_move_after_a_submission_and_a_confirmation(make_site, smtp, database_url):
    site = make_site(ip="192.0.2.10", trusted_ips="192.0.2.0/24")
    before = site.client.get("/metrics")
    assert before.status_code == 200
    assert before.headers["content-type"].startswith("text/plain")
    assert value(before.text, "petition_submissions_total", outcome="new") == 0
    names = {family.name for family in text_string_to_metric_families(before.text)}
    assert {
        "petition_submissions",
        "petition_confirmations",
        "petition_outbox_emails",
        "petition_outbox_oldest_queued_seconds",
        "petition_outbox_send_seconds",
        "petition_dossier_builds",
        "petition_intake_group_size",
        "petition_worker_heartbeat_age_seconds",
    } <= names

    assert site.endorse(contact_email="office@metrics.example").status_code == 303
    [message] = wait_for_mail(smtp, "office@metrics.example")
    assert site.confirm(links(message, BASE_URL)[0]).status_code == 303

    after = wait_for(
        lambda: (
            text
            if value(text := site.client.get("/metrics").text, "petition_outbox_send_seconds_count", result="sent") >= 2
            else None
        )
    )
    assert value(after, "petition_submissions_total", outcome="new") == 1
    assert value(after, "petition_confirmations_total", outcome="confirmed") == 1
    assert value(after, "petition_outbox_emails", state="queued") == 0
    assert value(after, "petition_dossier_builds", state="done") == 0
    if database_url.startswith("postgresql://"):
        # asyncpg's pool, read through databases' backend (petition.db.Database.pool_use).
        assert value(after, "petition_db_pool_connections", state="max") >= 1
        assert 1 <= value(after, "petition_db_pool_connections", state="open")
        assert value(after, "petition_intake_group_size_count") == 1
    # Not a single address or token in what Prometheus stores.
    assert "office@metrics.example" not in after and "metrics.example" not in after


def test_a_client_outside_trusted_ips_gets_the_page_of_a_path_that_does_not_exist(make_site):
    site = make_site(ip="198.51.100.9", trusted_ips="192.0.2.0/24", metrics_token=TOKEN)
    refused = site.client.get("/metrics")
    missing = site.client.get("/no-such-page")
    assert refused.status_code == missing.status_code == 404
    assert refused.text.replace("/metrics", "/no-such-page") == missing.text
    assert site.client.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 404
    assert site.client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 404


def test_the_bearer_token_is_accepted_from_anywhere(make_site):
    site = make_site(ip="198.51.100.9", metrics_token=TOKEN)
    answer = site.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert "petition_outbox_emails" in answer.text
    assert answer.headers["cache-control"] == "no-store"


def test_no_metrics_without_trusted_ips_or_a_token(make_site):
    site = make_site(ip="127.0.0.1")
    assert site.client.get("/metrics").status_code == 404
