"""Run Alembic from code (the CLI, `serve` at start-up, tests).

The configuration is built here, not read from the repository's alembic.ini (that file is for
developers running `alembic` in a checkout): an installed wheel has no alembic.ini beside it.
"""

from __future__ import annotations

import asyncio
import functools

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
    await asyncio.to_thread(upgrade, database_url, revision)


@functools.cache
def head_revisions() -> frozenset[str]:
    """The revisions this code's migrations end at (read once per process)."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())
