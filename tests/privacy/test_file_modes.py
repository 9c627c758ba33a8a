"""Files the service writes (database, emails, dossiers, keys) are readable by its own user only."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from petition.app import create_app
from petition.cli import main
from petition.settings import load_settings
from tests.conftest import BASE_URL, TEST_SECRET, Site, make_settings
from tests.factories import add_endorsements
from tests.support import wait_for


@pytest.fixture
def everyone_may_read_by_default() -> Iterator[None]:
    """The usual umask: files and directories others may read unless the code says otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def others_may_open(path: Path) -> bool:
    return bool(stat.S_IMODE(path.stat().st_mode) & 0o077)


def test_database_mail_and_dossier_files_are_readable_by_the_owner_only(
    everyone_may_read_by_default, database_url, tmp_path, monkeypatch
):
    data = tmp_path / "data"
    # The embedded default generates its SECRET_KEY into DATA_DIR.
    load_settings(env_file=None, data_dir=str(data), database_url="", secret_key="")
    sqlite = database_url.startswith("sqlite")
    if sqlite:  # a database the application creates itself, as on a first `petition serve`
        database_url = f"sqlite:///{data / 'petition.db'}"
    settings = make_settings(database_url, data, None)  # no SMTP_HOST: emails become .eml files
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        Site(client).endorse(contact_email="owner-only@private.example")
        emails = wait_for(lambda: list((data / "mail").glob("*.eml")))
        written = [data / "secret_key", *emails]
        assert [p.name for p in written if others_may_open(p)] == []
    if sqlite:
        # SQLite gives its -wal and -shm files the database file's mode; they exist while it is open.
        reader = sqlite3.connect(data / "petition.db")
        try:
            assert reader.execute("SELECT count(*) FROM endorsements").fetchone() == (1,)
            files = [data / name for name in ("petition.db", "petition.db-wal", "petition.db-shm")]
            assert [p.name for p in files if others_may_open(p)] == []
        finally:
            reader.close()

    add_endorsements(database_url, rows=[dict(organisation_name="Owner Only e.V.")])
    for name, value in {
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data),
        "SECRET_KEY": TEST_SECRET,
        "BASE_URL": BASE_URL,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env
    out = tmp_path / "handed-out" / "de.pdf"
    result = CliRunner().invoke(
        main, ["dossier", "build", "--appeal", "protect-deserters", "--country", "DE", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    stored = list((data / "dossiers").glob("*.pdf"))
    signing = list((data / "signing").iterdir())
    assert stored and signing
    assert [p.name for p in (*stored, *signing, out) if others_may_open(p)] == []
    directories = [data, data / "mail", data / "dossiers", data / "signing", out.parent]
    assert [str(p) for p in directories if others_may_open(p)] == []

    if sqlite:  # `petition db upgrade` on a new database file
        monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'fresh' / 'petition.db'}")
        result = CliRunner().invoke(main, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert not others_may_open(tmp_path / "fresh" / "petition.db")
        assert not others_may_open(tmp_path / "fresh")
