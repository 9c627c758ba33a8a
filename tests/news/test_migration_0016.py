"""Migration 0016 gives existing endorsements no news consent, adds the updates' table, and takes
both away again on the way down, the endorsements kept (SQLite and PostgreSQL, per the run's backend)."""

from __future__ import annotations

from pathlib import Path

from petition.migrations.runner import downgrade, upgrade
from tests.support import db_rows, run_sql
from tests.test_migrations import _fresh_database, _insert, tables_in


def columns(url: str) -> set[str]:
    if url.startswith("sqlite:///"):
        return {r["name"] for r in db_rows(url, "SELECT name FROM pragma_table_info('endorsements')")}
    rows = db_rows(url, "SELECT column_name AS name FROM information_schema.columns WHERE table_name = 'endorsements'")
    return {r["name"] for r in rows}


NEWS = {"news_consent_version", "news_consented_at", "news_unsubscribed_at"}


def test_0016_adds_news_to_existing_endorsements_and_removes_it_on_the_way_down(tmp_path: Path):
    with _fresh_database(tmp_path, "m0016") as url:
        upgrade(url, "0015")
        run_sql(
            url,
            "INSERT INTO appeals (id, slug, status, moderation, default_language, addressees, created_at) "
            "VALUES (1, 'a', 'open', 'post', 'en', '', '2026-12-01 00:00:00')",
        )
        _insert(url, 1, "office@older.example", "office@older.example", "confirmed")
        upgrade(url, "0016")
        assert NEWS <= columns(url) and "news_updates" in tables_in(url)
        assert db_rows(url, "SELECT id, news_consent_version, news_unsubscribed_at FROM endorsements") == [
            {"id": 1, "news_consent_version": None, "news_unsubscribed_at": None}
        ]
        run_sql(url, "UPDATE endorsements SET news_consent_version = '2026-12'")
        run_sql(
            url,
            "INSERT INTO news_updates (appeal_id, country, texts, recipients, created_at) "
            "VALUES (1, 'DE', '{}', 1, '2026-12-02 00:00:00')",
        )
        downgrade(url, "0015")
        assert not NEWS & columns(url) and "news_updates" not in tables_in(url)
        assert db_rows(url, "SELECT id, state FROM endorsements") == [{"id": 1, "state": "confirmed"}]
        upgrade(url, "0016")
        assert NEWS <= columns(url)
