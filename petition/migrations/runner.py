"""Run Alembic from code (the CLI, `serve` at start-up, tests).

The configuration is built here, not read from the repository's alembic.ini (that file is for
developers running `alembic` in a checkout): an installed wheel has no alembic.ini beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from pathlib import Path
from urllib.parse import quote

from alembic import command
from alembic.config import Config

from petition.resources import package_path


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(package_path("migrations")))
    cfg.set_main_option("path_separator", "os")
    # Config options are interpolated: a percent-encoded password ("p%40ss") must stay as it is.
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["configure_logging"] = False
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    # env.py runs its own event loop: keep it off ours.
    await asyncio.to_thread(_upgrade_unless_at_head, database_url, revision)


def _upgrade_unless_at_head(database_url: str, revision: str) -> None:
    """What `serve` does at every start on SQLite: nothing when the file is at head already.

    Alembic's upgrade would find that too, but only after loading its environment and every
    migration module (tens of milliseconds each start); one read of `alembic_version` says so.
    """
    if revision == "head" and sqlite_revisions(database_url) == head_revisions():
        return
    upgrade(database_url, revision)


def sqlite_revisions(database_url: str) -> frozenset[str] | None:
    """The revisions a SQLite database file says it is at, read-only; None if not a SQLite file
    with an `alembic_version` table (then Alembic decides)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        return None
    path = Path(url.database)
    if not path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)) as conn:
            return frozenset(row[0] for row in conn.execute("SELECT version_num FROM alembic_version"))
    except sqlite3.Error:
        return None


@functools.cache
def head_revisions() -> frozenset[str]:
    """The revisions this code's migrations end at (read once per process)."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())
