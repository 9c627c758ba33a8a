"""Alembic's configuration: built in code at run time (an installed wheel has no alembic.ini),
while the repository's alembic.ini keeps working for developers who run `alembic` in a checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from petition.migrations.runner import alembic_config, upgrade
from petition.resources import package_path
from tests.support import PROJECT_ROOT, db_rows


def test_the_runner_needs_no_alembic_ini_and_no_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # an empty directory: no alembic.ini, no petition/ beside it
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    config = alembic_config(url)
    assert config.config_file_name is None
    assert Path(str(config.get_main_option("script_location"))) == package_path("migrations")
    upgrade(url)
    assert db_rows(url, "SELECT version_num FROM alembic_version")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.db"]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://petition:p%40ss%25word@db.internal/petition",  # a percent-encoded password
        "sqlite:////srv/data%20dir/petition.db",
    ],
)
def test_a_percent_encoded_database_url_reaches_alembic_unchanged(url: str):
    # Alembic's options are interpolated ("%(here)s"): a bare "%" used to raise ValueError.
    assert alembic_config(url).get_main_option("sqlalchemy.url") == url


def test_the_repository_alembic_ini_still_migrates(tmp_path: Path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}", "DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert db_rows(env["DATABASE_URL"], "SELECT version_num FROM alembic_version")
