"""`petition backup` and `petition restore`, on the suite's backend: a running site backed up and
restored into a fresh database and DATA_DIR answers as before; a changed backup, a target that
holds something, and a backup taken mid-submission are handled as an operator needs."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import re
import shutil
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from petition.app import create_app
from petition.backup import MANIFEST, BackupError, create_backup, restore_backup, verify_backup
from petition.cli import main
from petition.dossiers import jobs
from petition.dossiers.sign import ensure_self_signed
from petition.settings import Settings, write_private_file
from tests.conftest import BASE_URL, TEST_SECRET, Site, _admin, _with_database, make_settings
from tests.factories import add_endorsements, demo_appeal_id
from tests.support import LiveServer, SMTPServer, csrf_from, db_rows, links, valid_form, wait_for, wait_for_mail

SLUG = "protect-deserters"


@pytest.fixture
def fresh_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database that holds nothing yet, on the suite's backend (a restore's target)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'petition.db'}"
        return
    name = f"petition_restore_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(database_url, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(database_url, name)
    finally:
        asyncio.run(_admin(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def target(url: str, data_dir: Path, smtp: SMTPServer | None = None, **overrides: Any) -> Settings:
    return make_settings(url, data_dir, smtp, **overrides)


def has_tables(url: str) -> bool:
    if url.startswith("sqlite"):
        path = Path(url[len("sqlite:///") :])
        return path.exists() and bool(
            db_rows(url, "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'")[0]["n"]
        )
    sql = "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public'"
    return bool(db_rows(url, sql)[0]["n"])


def public_view(client: TestClient) -> tuple[Any, ...]:
    """What the public sees: counts, the named list (JSON, CSV), a country's list."""
    return (
        client.get(f"/api/appeals/{SLUG}").json(),
        client.get(f"/api/appeals/{SLUG}/endorsements").json(),
        client.get(f"/api/appeals/{SLUG}/endorsements?country=DE").json(),
        client.get(f"/appeals/{SLUG}/endorsements.csv").text,
    )


def audit_rows(url: str) -> list[dict[str, Any]]:
    return db_rows(
        url, "SELECT id, organiser_id, action, target_type, target_id, detail, created_at FROM audit_log ORDER BY id"
    )


def verdict(client: TestClient, pdf: bytes) -> str:
    token = csrf_from(client.get("/verify").text)
    page = client.post(
        "/verify", data={"csrf_token": token}, files={"dossier": ("dossier.pdf", pdf, "application/pdf")}
    )
    assert page.status_code == 200, page.text
    found = re.search(r'<section class="verdict verdict-([a-z-]+)"', page.text)
    assert found, page.text
    return found.group(1)


def build_dossier(client: TestClient, country: str) -> dict[str, Any]:
    services = client.app.state.services  # type: ignore[attr-defined]
    appeal_id = client.portal.call(functools.partial(_appeal_id, services.db))  # type: ignore[union-attr]
    dossier_id = client.portal.call(  # type: ignore[union-attr]
        functools.partial(jobs.queue_build, services.db, appeal_id=appeal_id, country=country)
    )
    services.dossier_worker.notify()

    async def done() -> dict[str, Any] | None:
        row = await jobs.get_dossier(services.db, dossier_id=dossier_id)
        return dict(row) if row and row["state"] in ("done", "failed") else None

    row = wait_for(lambda: client.portal.call(done), timeout=120, interval=0.2)  # type: ignore[union-attr]
    assert row["state"] == "done", row["error"]
    return row


async def _appeal_id(db: Any) -> int:
    from petition.appeals.queries import get_appeal

    row = await get_appeal(db, slug=SLUG)
    assert row is not None
    return int(row["id"])


def confirmation_link(smtp: SMTPServer, address: str) -> str:
    [message] = wait_for_mail(smtp, address)
    [link] = links(message, BASE_URL)
    return link


def test_a_site_backed_up_while_it_runs_comes_back_whole_in_a_fresh_database_and_data_dir(
    database_url: str, fresh_database: str, tmp_path: Path, smtp: SMTPServer
) -> None:
    sqlite = database_url.startswith("sqlite")
    # The embedded default keeps the SECRET_KEY it generated in DATA_DIR: the backup must carry it.
    secret = "" if sqlite else TEST_SECRET
    settings = target(database_url, tmp_path / "data", smtp, secret_key=secret)
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        site = Site(client)
        add_endorsements(
            client,
            rows=[
                dict(organisation_name="Connection e.V."),
                dict(organisation_name="Friedensnetz Köln", city="Köln"),
                *[dict(organisation_name=f"Stille Gruppe {i}", visibility="anonymous") for i in range(3)],
                dict(organisation_name="Association pour la paix", country="FR", city="Lyon"),
                dict(organisation_name="Noch nicht bestätigt", state="pending"),
            ],
        )
        # Over HTTP: one confirmed by its mailbox, then approved (audit rows), one left pending.
        assert (
            site.endorse(contact_email="office@kirche-bonn.example", organisation_name="Kirche Bonn").status_code == 303
        )
        assert site.confirm(confirmation_link(smtp, "office@kirche-bonn.example")).status_code == 303
        services = client.app.state.services  # type: ignore[attr-defined]
        appeal_id = demo_appeal_id(database_url)
        client.portal.call(functools.partial(services.lifecycle.approve_all_confirmed, appeal_id=appeal_id))
        assert site.endorse(contact_email="office@spaeter.example", organisation_name="Später e.V.").status_code == 303
        later_link = confirmation_link(smtp, "office@spaeter.example")
        dossier = build_dossier(client, "DE")
        pdf = Path(dossier["file_path"]).read_bytes()
        before = public_view(client)
        audit = audit_rows(database_url)
        assert {row["action"] for row in audit} >= {"endorsement.confirm", "endorsement.approve"}
        last_id = max(r["id"] for r in db_rows(database_url, "SELECT id FROM endorsements"))

        outcome = create_backup(settings, tmp_path / "backup")  # the app still running

    names = {f.path for f in outcome.manifest.files}
    assert {"data/signing/organiser-signing.p12", f"data/dossiers/{Path(dossier['file_path']).name}"} <= names
    assert ("data/secret_key" in names) == sqlite
    assert not any(name.startswith("data/mail") or name.endswith(".db") for name in names)
    assert stat.S_IMODE(outcome.directory.stat().st_mode) == 0o700
    for path in outcome.directory.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path

    restored_dir = tmp_path / "restored-data"
    # Restoring signs nothing: a placeholder secret keeps the embedded default from generating one.
    restore_backup(target(fresh_database, restored_dir, secret_key=TEST_SECRET), outcome.directory)
    for path in restored_dir.rglob("*"):
        if not path.name.startswith("petition.db"):
            assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path

    restored = target(fresh_database, restored_dir, smtp, secret_key=secret)
    with TestClient(create_app(restored), base_url=BASE_URL) as client:
        assert public_view(client) == before
        assert audit_rows(fresh_database) == audit
        # The dossier issued before is still this platform's, and its row names its file here.
        assert verdict(client, pdf) == "genuine"
        [row] = db_rows(fresh_database, "SELECT file_path FROM dossiers")
        assert Path(row["file_path"]).parent == restored_dir / "dossiers"
        assert Path(row["file_path"]).read_bytes() == pdf
        # A link emailed before the backup still confirms (the same secret signs it) …
        site = Site(client)
        assert site.confirm(later_link).status_code == 303
        # … and a new submission is stored under a new id (PostgreSQL: the sequence came along).
        assert site.endorse(contact_email="office@danach.example", organisation_name="Danach").status_code == 303
        [new] = db_rows(fresh_database, "SELECT id FROM endorsements WHERE organisation_name = $1", "Danach")
        assert new["id"] > last_id
        counts = client.get(f"/api/appeals/{SLUG}").json()["counts"]
        assert counts["total"] == before[0]["counts"]["total"] + 1  # "Später e.V." confirmed


@pytest.fixture
def small_backup(database_url: str, tmp_path: Path) -> tuple[Settings, Path]:
    """A backup of a site with endorsements, the signing certificate and one dossier file."""
    add_endorsements(database_url, count=3)
    settings = target(database_url, tmp_path / "data")
    ensure_self_signed(settings)
    (settings.data_dir / "dossiers").mkdir(mode=0o700)
    write_private_file(settings.data_dir / "dossiers" / "appeal-DE-1.pdf", b"%PDF-1.7 a dossier\n%%EOF\n")
    return settings, create_backup(settings, tmp_path / "backup").directory


def copy_of(backup: Path, tmp_path: Path) -> Path:
    copy = tmp_path / f"copy-{uuid.uuid4().hex[:6]}"
    shutil.copytree(backup, copy)
    return copy


def refused(backup: Path, url: str, data_dir: Path, match: str, **options: Any) -> None:
    with pytest.raises(BackupError, match=match):
        restore_backup(target(url, data_dir), backup, **options)
    assert not has_tables(url), "a refused restore wrote to the database"
    assert not data_dir.exists(), "a refused restore wrote to DATA_DIR"


def test_a_changed_missing_or_added_file_is_refused_before_anything_is_written(
    small_backup: tuple[Settings, Path], fresh_database: str, tmp_path: Path
) -> None:
    _settings, backup = small_backup
    data_dir = tmp_path / "restored-data"

    def flip(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))

    cases = {
        "signing certificate changed": lambda b: flip(b / "data/signing/organiser-signing.p12"),
        "dossier changed": lambda b: flip(b / "data/dossiers/appeal-DE-1.pdf"),
        "database changed": lambda b: flip(next(b.glob("database.*"))),
        "dossier removed": lambda b: (b / "data/dossiers/appeal-DE-1.pdf").unlink(),
        "a file slipped in": lambda b: (b / "data/dossiers/forged.pdf").write_bytes(b"%PDF forged"),
        "a link slipped in": lambda b: (b / "data/evil").symlink_to("/etc/passwd"),
    }
    messages = {}
    for case, change in cases.items():
        copy = copy_of(backup, tmp_path)
        change(copy)
        with pytest.raises(BackupError) as caught:
            restore_backup(target(fresh_database, data_dir), copy)
        messages[case] = str(caught.value)
        assert not has_tables(fresh_database) and not data_dir.exists(), case
    assert "organiser-signing.p12 is not the file that was backed up" in messages["signing certificate changed"]
    assert "appeal-DE-1.pdf is missing" in messages["dossier removed"]
    assert "not in the manifest: data/dossiers/forged.pdf" in messages["a file slipped in"]
    assert "data/evil: not a plain file" in messages["a link slipped in"]
    # The untouched backup restores, here through a link to it (an operator's "latest").
    (tmp_path / "latest").symlink_to(backup)
    restore_backup(target(fresh_database, data_dir), tmp_path / "latest")
    assert has_tables(fresh_database)


def test_a_manifest_rewritten_to_match_a_forgery_is_caught_by_the_digest_backup_printed(
    small_backup: tuple[Settings, Path], fresh_database: str, tmp_path: Path
) -> None:
    _settings, backup = small_backup
    printed = hashlib.sha256((backup / MANIFEST).read_bytes()).hexdigest()
    copy = copy_of(backup, tmp_path)
    forged = b"%PDF-1.7 a forged dossier\n%%EOF\n"
    (copy / "data/dossiers/appeal-DE-1.pdf").write_bytes(forged)
    manifest = json.loads((copy / MANIFEST).read_text())
    for entry in manifest["files"]:
        if entry["path"] == "data/dossiers/appeal-DE-1.pdf":
            entry.update(size=len(forged), sha256=hashlib.sha256(forged).hexdigest())
    (copy / MANIFEST).write_text(json.dumps(manifest))
    refused(
        copy,
        fresh_database,
        tmp_path / "restored-data",
        "manifest.json is not the one expected",
        manifest_sha256=printed,
    )
    assert verify_backup(backup, manifest_sha256=printed.upper()).alembic_revision


def test_the_manifest_names_no_file_outside_the_backup_nor_a_revision_this_release_lacks(
    small_backup: tuple[Settings, Path], fresh_database: str, tmp_path: Path
) -> None:
    _settings, backup = small_backup
    original = json.loads((backup / MANIFEST).read_text())
    for path in ("../outside", "/etc/passwd", "data/../../outside", "data", "data//x", "secret_key"):
        copy = copy_of(backup, tmp_path)
        manifest = json.loads(json.dumps(original))
        manifest["files"].append({"path": path, "size": 0, "sha256": "0" * 64})
        (copy / MANIFEST).write_text(json.dumps(manifest))
        refused(copy, fresh_database, tmp_path / "restored-data", "the manifest names a file")
    copy = copy_of(backup, tmp_path)
    (copy / MANIFEST).write_text(json.dumps({**original, "alembic_revision": "9999"}))
    refused(copy, fresh_database, tmp_path / "restored-data", "revision 9999, which this release")
    copy = copy_of(backup, tmp_path)
    (copy / MANIFEST).unlink()
    refused(copy, fresh_database, tmp_path / "restored-data", "holds no manifest.json")


def test_restore_goes_into_an_empty_database_and_data_dir_unless_forced(
    small_backup: tuple[Settings, Path], fresh_database: str, tmp_path: Path
) -> None:
    settings, backup = small_backup
    # The site's own database and DATA_DIR hold everything: refused, and left as they were.
    before = db_rows(settings.database_url, "SELECT count(*) AS n FROM endorsements")
    with pytest.raises(BackupError, match="the database is not empty"):
        restore_backup(settings, backup)
    assert db_rows(settings.database_url, "SELECT count(*) AS n FROM endorsements") == before
    # An empty database but a DATA_DIR in use: refused, before the database is written.
    with pytest.raises(BackupError, match=r"DATA_DIR \(.*\) is not empty"):
        restore_backup(target(fresh_database, settings.data_dir), backup)
    assert not has_tables(fresh_database)

    data_dir = tmp_path / "restored-data"
    restore_backup(target(fresh_database, data_dir), backup)
    add_endorsements(fresh_database, count=2)  # the restored site goes on: 5 endorsements
    with pytest.raises(BackupError, match="the database is not empty"):
        restore_backup(target(fresh_database, tmp_path / "other-data"), backup)
    # Forced: back to the backup's 3, the files written over.
    (data_dir / "dossiers" / "appeal-DE-1.pdf").write_bytes(b"changed since")
    restore_backup(target(fresh_database, data_dir), backup, force=True)
    assert db_rows(fresh_database, "SELECT count(*) AS n FROM endorsements") == [{"n": 3}]
    assert (data_dir / "dossiers" / "appeal-DE-1.pdf").read_bytes().startswith(b"%PDF-1.7 a dossier")


def test_a_backup_is_restored_only_into_its_own_kind_of_database(
    small_backup: tuple[Settings, Path], database_url: str, tmp_path: Path
) -> None:
    _settings, backup = small_backup
    other = (
        "postgresql://nobody@127.0.0.1:9/nothing"
        if database_url.startswith("sqlite")
        else f"sqlite:///{tmp_path / 'x' / 'petition.db'}"
    )
    with pytest.raises(BackupError, match="restore it into the same kind of database"):
        restore_backup(target(other, tmp_path / "restored-data"), backup)  # before connecting to it
    assert not (tmp_path / "restored-data").exists() and not (tmp_path / "x").exists()


def test_backup_makes_a_new_directory_outside_data_dir(small_backup: tuple[Settings, Path], tmp_path: Path) -> None:
    settings, backup = small_backup
    with pytest.raises(BackupError, match="exists and is not an empty directory"):
        create_backup(settings, backup)
    with pytest.raises(BackupError, match="is inside DATA_DIR"):
        create_backup(settings, settings.data_dir / "backups" / "today")
    assert not (settings.data_dir / "backups").exists()
    (tmp_path / "empty").mkdir()
    assert create_backup(settings, tmp_path / "empty").directory == tmp_path / "empty"
    # No half-made backup is left behind under another name.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_the_commands_an_operator_types(
    database_url: str, fresh_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_endorsements(database_url, count=2)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    made = runner.invoke(main, ["backup", "--out", str(tmp_path / "nightly")])
    assert made.exit_code == 0, made.output
    digest = re.search(r"manifest SHA-256: ([0-9a-f]{64})", made.output)
    assert digest, made.output
    checked = runner.invoke(
        main, ["restore", "--check", "--manifest-sha256", digest.group(1), str(tmp_path / "nightly")]
    )
    assert checked.exit_code == 0 and "intact" in checked.output, checked.output

    monkeypatch.setenv("DATABASE_URL", fresh_database)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "restored-data"))
    (tmp_path / "nightly" / "stray.txt").write_text("not from the backup")
    bad = runner.invoke(main, ["restore", str(tmp_path / "nightly")])
    assert bad.exit_code == 1 and "stray.txt" in bad.output and "Traceback" not in bad.output
    (tmp_path / "nightly" / "stray.txt").unlink()
    done = runner.invoke(main, ["restore", str(tmp_path / "nightly")])
    assert done.exit_code == 0, done.output
    assert "restored" in done.output and "petition db upgrade" in done.output
    assert db_rows(fresh_database, "SELECT count(*) AS n FROM endorsements") == [{"n": 2}]
    again = runner.invoke(main, ["restore", str(tmp_path / "nightly")])
    assert again.exit_code == 1 and "the database is not empty" in again.output


def test_a_backup_taken_while_submissions_arrive_is_one_moment_of_the_database(
    database_url: str, fresh_database: str, tmp_path: Path, smtp: SMTPServer
) -> None:
    settings = target(database_url, tmp_path / "data", smtp, trusted_ips="127.0.0.1")
    live = LiveServer(settings)
    live.start()
    answered: list[tuple[float, str]] = []
    failures: list[str] = []
    stop = threading.Event()

    def submit(worker: int) -> None:
        with httpx2.Client(base_url=live.url, timeout=30) as http:
            n = 0
            while not stop.is_set():
                n += 1
                address = f"office@group-{worker}-{n}.example"
                form = valid_form(contact_email=address, organisation_name=f"Group {worker}-{n}")
                form["csrf_token"] = csrf_from(http.get(f"/appeals/{SLUG}").text)
                response = http.post(f"/appeals/{SLUG}/endorse", data=form, follow_redirects=False)
                if response.status_code != 303:
                    failures.append(f"{address}: {response.status_code}")
                    return
                answered.append((time.monotonic(), address))

    threads = [threading.Thread(target=submit, args=(k,)) for k in range(3)]
    # SQLite: another process on the database (a `petition worker`) keeps the last writes in
    # the -wal file, where a copy of the database file alone would miss them.
    neighbour = sqlite3.connect(database_url[len("sqlite:///") :]) if database_url.startswith("sqlite") else None
    if neighbour is not None:
        neighbour.execute("SELECT count(*) FROM appeals").fetchall()
    try:
        for thread in threads:
            thread.start()
        wait_for(lambda: len(answered) >= 15, timeout=60)
        started = time.monotonic()
        outcome = create_backup(settings, tmp_path / "backup")
        finished = time.monotonic()
        wait_for(lambda: sum(at > finished for at, _ in answered) >= 10, timeout=60)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        live.stop()
        if neighbour is not None:
            neighbour.close()
    assert not failures

    restore_backup(target(fresh_database, tmp_path / "restored-data"), outcome.directory)
    copied = db_rows(fresh_database, "SELECT id, contact_email FROM endorsements")
    emails = {row["contact_email"] for row in copied}
    # Everything answered before the backup began is in it …
    assert {address for at, address in answered if at < started} <= emails
    # … and nothing half-written: each endorsement came with the email queued in its transaction.
    queued = db_rows(fresh_database, "SELECT endorsement_id FROM outbox WHERE endorsement_id IS NOT NULL")
    assert sorted(row["endorsement_id"] for row in queued) == sorted(row["id"] for row in copied)
    assert len(copied) < len(answered)  # submissions went on after the copy's moment


def test_pg_dump_gets_the_password_through_its_environment_and_no_asyncpg_options() -> None:
    from petition.backup import _libpq_environment

    env, name = _libpq_environment(
        "postgresql://petition:s%40cret@db.internal:6543/campaign?sslmode=verify-full&statement_cache_size=0&max_size=5"
    )
    assert name == "campaign"
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGPASSWORD"], env["PGSSLMODE"]) == (
        "db.internal",
        "6543",
        "petition",
        "s@cret",
        "verify-full",
    )
    assert not any("statement_cache_size" in value or "max_size" in value for value in env.values())
    socket_env, _ = _libpq_environment("postgresql:///petition?host=/run/postgresql&ssl=true")
    assert (socket_env["PGHOST"], socket_env["PGSSLMODE"]) == ("/run/postgresql", "require")
    assert "PGPASSWORD" not in socket_env


def test_a_pg_dump_older_than_the_server_is_refused_with_the_package_to_install(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's tools: this runs in the PostgreSQL pass")
    from petition import backup

    old = tmp_path / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    old.chmod(0o755)
    monkeypatch.setattr(backup, "_postgres_tool", lambda name: str(old))
    settings = target(database_url, tmp_path / "data")
    with pytest.raises(BackupError, match=r"version 9 and cannot dump a PostgreSQL \d+ server.*postgresql-client-\d+"):
        create_backup(settings, tmp_path / "backup")
    assert not (tmp_path / "backup").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_embedded_default_backs_up_its_files_but_not_its_database_file_mail_or_temporaries(tmp_path: Path) -> None:
    from petition.backup import data_dir_files
    from petition.migrations.runner import upgrade

    data = tmp_path / "data"
    settings = make_settings("", data, None, secret_key="")  # sqlite:///DATA_DIR/petition.db, a generated secret
    upgrade(settings.database_url)
    ensure_self_signed(settings)
    for name in ("mail/x.eml", "dossiers/.d.pdf.1234.tmp", "dossiers/a.pdf"):
        (data / name).parent.mkdir(mode=0o700, exist_ok=True)
        write_private_file(data / name, b"x")
    running = sqlite3.connect(data / "petition.db")  # as petition holds it: in WAL mode, -wal and -shm beside it
    try:
        running.execute("PRAGMA journal_mode=WAL")
        running.execute("SELECT count(*) FROM appeals").fetchall()
        assert (data / "petition.db-wal").exists() and (data / "petition.db-shm").exists()
        files = [str(p) for p in data_dir_files(settings)]
        assert files == ["secret_key", "dossiers/a.pdf", "signing/organiser-signing.p12"]
        outcome = create_backup(settings, tmp_path / "backup")
    finally:
        running.close()
    assert [f.path for f in outcome.manifest.files] == [
        "database.sqlite",
        "data/secret_key",
        "data/dossiers/a.pdf",
        "data/signing/organiser-signing.p12",
    ]
    # Restored the same way: DATA_DIR holds its database and files, and petition starts on it.
    restored = tmp_path / "restored"
    restore_backup(make_settings("", restored, None, secret_key=TEST_SECRET), outcome.directory)
    assert (restored / "secret_key").read_bytes() == (data / "secret_key").read_bytes()
    with TestClient(create_app(make_settings("", restored, None, secret_key="")), base_url=BASE_URL) as client:
        assert client.get(f"/api/appeals/{SLUG}").status_code == 200
