"""Migration 0012 gives every appeal an empty list of initiators and takes the list away again
on the way down, the appeals themselves kept (SQLite and PostgreSQL, per the run's backend)."""

from __future__ import annotations

from pathlib import Path

from petition.migrations.runner import downgrade, upgrade
from tests.support import db_rows, run_sql
from tests.test_migrations import _fresh_database


def columns(url: str) -> set[str]:
    if url.startswith("sqlite:///"):
        return {r["name"] for r in db_rows(url, "SELECT name FROM pragma_table_info('appeals')")}
    rows = db_rows(url, "SELECT column_name AS name FROM information_schema.columns WHERE table_name = 'appeals'")
    return {r["name"] for r in rows}


def test_0012_adds_initiators_to_existing_appeals_and_removes_them_on_the_way_down(tmp_path: Path):
    with _fresh_database(tmp_path, "m0012") as url:
        upgrade(url, "0011")
        run_sql(
            url,
            "INSERT INTO appeals (id, slug, status, moderation, addressees, default_language, created_at) "
            "VALUES (1, 'older', 'open', 'post', '', 'en', '2026-11-01 00:00:00')",
        )
        upgrade(url)
        assert db_rows(url, "SELECT slug, initiators FROM appeals") == [{"slug": "older", "initiators": "[]"}]
        run_sql(url, """UPDATE appeals SET initiators = '[{"name":"A","website":"https://a.example"}]'""")
        downgrade(url, "0011")
        assert "initiators" not in columns(url)
        assert db_rows(url, "SELECT slug FROM appeals") == [{"slug": "older"}]
        upgrade(url)
        assert "initiators" in columns(url)
