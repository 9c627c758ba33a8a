"""The organiser migration runs up, down and up again (SQLite here; the PostgreSQL run migrates too)."""

from __future__ import annotations

import sqlalchemy as sa

from petition.migrations.runner import downgrade, upgrade


def test_migration_0003_up_down_up(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = sa.create_engine(url)
    try:
        assert "login_failures" in sa.inspect(engine).get_table_names()
        assert "session_version" in {c["name"] for c in sa.inspect(engine).get_columns("organisers")}
        downgrade(url, "0001")
        inspector = sa.inspect(engine)
        assert "login_failures" not in inspector.get_table_names()
        assert "session_version" not in {c["name"] for c in inspector.get_columns("organisers")}
        upgrade(url)
        assert "login_failures" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
