"""Fixtures on real parts: SQLite or PostgreSQL (PETITION_TEST_DATABASE), a real SMTP server.

PETITION_TEST_DATABASE unset or "sqlite": each test gets its own SQLite file, copied
from one migrated at the start of the session. A postgresql:// URL (of a server, any
database): the session creates a fresh database on that server, migrates it, empties
it before each test, and drops it at the end.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from petition.app import create_app
from petition.migrations.runner import upgrade
from petition.schema import all_tables
from petition.settings import Settings, load_settings
from tests.support import SMTPServer, csrf_from, valid_form

TEST_SECRET = "test-secret-key-not-for-production-0123456789"
BASE_URL = "http://testserver"


def _backend() -> str:
    return os.environ.get("PETITION_TEST_DATABASE", "sqlite").strip() or "sqlite"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_with_database(url, "postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


#: argon2id at its lowest cost. The production parameters (RFC 9106's "low memory" profile) spend
#: tens of milliseconds and 64 MiB on every hash by design, and the organiser tests hash and verify
#: hundreds of times. A hash carries its parameters, so verifying, `needs_rehash` and the dummy
#: hash for unknown accounts work as in production, only cheaper.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def self_signed_dossiers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands a test runs sign as one host would, with the certificate made into DATA_DIR:
    PostgreSQL requires SIGNING_P12 to say so (a test that sets it, or clears it, wins)."""
    if "SIGNING_P12" not in os.environ:
        monkeypatch.setenv("SIGNING_P12", "self-signed")


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Organiser passwords hashed cheaply, in this test process only: nothing an operator can set
    changes the production hasher (tests/organisers/test_passwords.py checks it in a fresh interpreter)."""
    from petition.organisers import passwords

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", CHEAP_HASHER)
        passwords._dummy_hash.cache_clear()
        yield
    passwords._dummy_hash.cache_clear()


def _unreachable(url: str) -> str | None:
    """Why the server at `url` takes no connection within 5 s (scripts/test's check), or None."""
    import asyncpg

    async def connect() -> None:
        conn = await asyncio.wait_for(asyncpg.connect(url), 5)
        await conn.close()

    try:
        asyncio.run(connect())
    except Exception as exc:  # noqa: BLE001 - any reason at all means: not here
        return type(exc).__name__
    return None


def postgres_server() -> str:
    """A PostgreSQL server for a test that makes databases of its own, whichever backend this run uses.

    This run's server, else PETITION_TEST_POSTGRES; neither: skipped, as the PostgreSQL run of
    scripts/test runs it. Unreachable: what scripts/test does with its PostgreSQL run (and the
    README promises), a failure under CI=true and a skip elsewhere.
    """
    backend = _backend()
    server = backend if backend.startswith("postgresql://") else os.environ.get("PETITION_TEST_POSTGRES", "").strip()
    if not server:
        pytest.skip("no PostgreSQL server here: this runs in the PostgreSQL run of scripts/test")
    problem = _unreachable(_with_database(server, "postgres"))
    if problem is not None:
        parts = urlsplit(server)  # host and port only: the URL may hold a password
        message = f"PostgreSQL is unreachable at {parts.hostname}:{parts.port or 5432} ({problem})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}, and CI needs this test to run on it")
        pytest.skip(message)
    return server


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for the session: a SQLite file to copy, or a PostgreSQL URL."""
    backend = _backend()
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("db") / "template.db"
        upgrade(f"sqlite:///{path}")
        yield str(path)
        return
    if not backend.startswith("postgresql://"):
        raise pytest.UsageError("PETITION_TEST_DATABASE must be 'sqlite' or a postgresql:// URL")
    name = f"petition_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(backend, f'CREATE DATABASE "{name}"'))
    url = _with_database(backend, name)
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(backend, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@functools.cache
def _emptying_sql() -> str:
    """Every table emptied, dependents first, and every sequence back at its start: one simple
    query, so one transaction and one commit. `TRUNCATE … RESTART IDENTITY CASCADE` did the same
    in ~65 ms a test on an idle machine, against ~17 for this: it gives each table and index a
    new file and syncs them all at commit; the tests leave tables of a few rows."""
    deletes = "".join(f'DELETE FROM "{table.name}";' for table in reversed(all_tables().sorted_tables))
    return deletes + "SELECT setval(seqrelid, seqstart, false) FROM pg_sequence;"


async def _empty_tables(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(_emptying_sql())
    finally:
        await conn.close()


@pytest.fixture
def database_url(database_template: str, tmp_path: Path) -> str:
    if database_template.startswith("postgresql://"):
        asyncio.run(_empty_tables(database_template))
        return database_template
    path = tmp_path / "petition.db"
    shutil.copyfile(database_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def make_settings(database_url: str, data_dir: Path, smtp: SMTPServer | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": str(data_dir),
        "secret_key": TEST_SECRET,
        "base_url": BASE_URL,
        "smtp_host": "127.0.0.1" if smtp else "",
        "smtp_port": smtp.port if smtp else 25,
        # The production default. With 5 s, a send stalled by a loaded CI machine could time out
        # and be put off for a retry, which a test reads as an email that never came (no test
        # waits on this timeout).
        "smtp_timeout": 30,
        "mail_from": "appeal@petition.example",
        "worker_poll_interval": 0.05,
        # A delivery's emails 0.1 s apart, not 2 s: the spacing is tested, not waited for.
        "delivery_interval": 0.1,
        "trusted_ips": "",
        # Required with PostgreSQL; the tests sign with the certificate made into DATA_DIR.
        "signing_p12": "self-signed",
    }
    values.update(overrides)
    return load_settings(env_file=None, **values)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp: SMTPServer) -> Settings:
    return make_settings(database_url, tmp_path / "data", smtp)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url=BASE_URL) as test_client:
        yield test_client


class Site:
    """What a person does on the site, over HTTP."""

    def __init__(self, client: TestClient, slug: str = "protect-deserters") -> None:
        self.client = client
        self.slug = slug

    def csrf(self, path: str | None = None) -> str:
        page = self.client.get(path or f"/appeals/{self.slug}")
        assert page.status_code == 200, page.status_code
        return csrf_from(page.text)

    def endorse(self, lang: str | None = None, slug: str | None = None, **fields: str) -> Any:
        slug = slug or self.slug
        form = valid_form(**fields)
        form["csrf_token"] = self.csrf(f"/appeals/{slug}")
        query = f"?lang={lang}" if lang else ""
        return self.client.post(f"/appeals/{slug}/endorse{query}", data=form, follow_redirects=False)

    def confirm(self, link: str) -> Any:
        path = link.replace(BASE_URL, "")
        page = self.client.get(path)
        assert page.status_code == 200, page.text
        return self.client.post(path, data={"csrf_token": csrf_from(page.text)}, follow_redirects=False)


@pytest.fixture
def site(client: TestClient) -> Site:
    return Site(client)


@pytest.fixture
def make_site(database_url: str, tmp_path: Path, smtp: SMTPServer) -> Iterator[Any]:
    """A site with its own settings, seen from one client address (each call: a new app instance)."""
    from contextlib import ExitStack

    stack = ExitStack()

    def make(ip: str = "203.0.113.7", **overrides: Any) -> Site:
        settings = make_settings(database_url, tmp_path / "data", smtp, **overrides)
        client = stack.enter_context(TestClient(create_app(settings), base_url=BASE_URL, client=(ip, 40000)))
        return Site(client)

    with stack:
        yield make
