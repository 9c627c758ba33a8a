"""What petition.db and petition.compiled_cache take from inside `databases` and SQLAlchemy.

Both patch private code (pyproject.toml pins `databases` for it). A new release that renames,
reshapes or stops calling what they rely on must fail here, by name, not as a rare
"database is locked" in production or a slower endorsement:

petition.db, SQLite (every backend pass: SQLite is always at hand)
  - `databases.backends.sqlite.SQLiteTransaction.start(self, is_root, extra_options)` is replaced
    by one that issues BEGIN IMMEDIATE for a root transaction and calls the original for a nested
    one; it reads `self._connection._connection` (the aiosqlite connection, opened with
    isolation_level=None so that no driver BEGIN comes first) and sets `self._is_root`, which
    `commit()` and `rollback()` read to choose COMMIT/ROLLBACK over a savepoint's.
    It issues `PRAGMA synchronous=FULL` first (every acquire opens a new connection).
  - `databases.Database(url, timeout=30)` hands `timeout` on to the driver (busy timeout).
petition.db, PostgreSQL
  - `databases.Database(url, ..., reset=_keep_session)` hands `reset` on to asyncpg's pool.
  - `connection().raw_connection` is the asyncpg connection of the current task's transaction.
petition.db, both
  - `Record.values()` gives the values `record["col"]` gives, in the query's column order.
petition.compiled_cache (both backends)
  - `databases.backends.postgres.PostgresConnection._compile(self, query)` returns
    `(sql, args, result_columns)` and is looked up on the class at each call, so replacing it
    takes effect; it reads `self._dialect`, whose paramstyle is "pyformat".
  - `databases.backends.sqlite.SQLiteConnection._compile(self, query)` returns
    `(sql, args, result_columns, CompilationContext(execution_context))`, the context holding
    `result_column_struct`; its dialect's paramstyle is "qmark" and args follow `positiontup`.
  - Entries are shared by dialects of one kind and settings: every `Database` (a test makes
    one an app) reuses what another compiled.
  - SQLAlchemy: `ClauseElement._generate_cache_key()` (`.key`, `.bindparams`),
    `compile(dialect=, cache_key=)`, `Compiled.construct_params(extracted_parameters=)`,
    `Compiled._bind_processors`, `Compiled._result_columns`, `Compiled.binds[...].expanding`,
    `Compiled.literal_execute_params`.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import inspect
import sqlite3
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from databases.backends.postgres import PostgresBackend, PostgresConnection
from databases.backends.sqlite import SQLiteBackend, SQLiteConnection, SQLiteTransaction
from sqlalchemy.sql.elements import CompilerElement

from petition import compiled_cache
from petition.appeals.queries import DEMO_SLUG, ensure_demo_appeal
from petition.appeals.tables import appeals
from petition.db import Database, _keep_session
from petition.endorsements.tables import endorsements
from petition.migrations.runner import upgrade_async
from petition.publish.queries import PUBLIC_COLUMNS, PUBLIC_FROM
from tests.factories import endorsement_row
from tests.publish.bulk import insert_endorsements

NOT_A_SERVER = "postgresql://nobody@127.0.0.1:1/nothing"  # never connected to: compiling needs no server


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[Database]:
    db = Database(url)
    await db.connect()
    try:
        yield db
    finally:
        await db.disconnect()


def scratch_sqlite(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "internals.db"
    return f"sqlite:///{path}", path


# --- SQLite: BEGIN IMMEDIATE ----------------------------------------------------------------------


def test_sqlite_transaction_start_is_still_the_method_we_replace(tmp_path: Path):
    Database(scratch_sqlite(tmp_path)[0])  # installs the replacement
    replaced = SQLiteTransaction.start
    assert getattr(replaced, "_petition_immediate", False), "Database() no longer replaces SQLiteTransaction.start"
    original = inspect.getclosurevars(replaced).nonlocals["original"]
    assert inspect.iscoroutinefunction(original)
    assert list(inspect.signature(original).parameters) == ["self", "is_root", "extra_options"]
    for method in (SQLiteTransaction.commit, SQLiteTransaction.rollback):
        # Where COMMIT or ROLLBACK is chosen over a savepoint's: the flag our start() sets.
        assert "self._is_root" in inspect.getsource(method), method
    Database(scratch_sqlite(tmp_path)[0])  # a second Database does not wrap the wrapper
    assert SQLiteTransaction.start is replaced


@pytest.mark.asyncio
async def test_a_sqlite_write_takes_the_write_lock_when_it_begins(tmp_path: Path):
    url, path = scratch_sqlite(tmp_path)
    async with connected(url) as db:
        await db.execute(sa.text("CREATE TABLE t (v INTEGER)"))
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            async with db.write():
                # Nothing written yet: a deferred BEGIN would hold no lock, and the other writer
                # would get in first and make this transaction fail at its first write.
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
                await db.execute(sa.text("INSERT INTO t (v) VALUES (1)"))
            # Committed (COMMIT, not a savepoint's RELEASE): the lock is free and the row is there.
            other.execute("BEGIN IMMEDIATE")
            assert other.execute("SELECT v FROM t").fetchall() == [(1,)]
            other.execute("ROLLBACK")
        finally:
            other.close()


@pytest.mark.asyncio
async def test_a_sqlite_write_rolls_back_and_nested_transactions_are_savepoints(tmp_path: Path):
    url, _path = scratch_sqlite(tmp_path)
    async with connected(url) as db:
        await db.execute(sa.text("CREATE TABLE t (v INTEGER)"))
        with pytest.raises(RuntimeError):
            async with db.write():
                await db.execute(sa.text("INSERT INTO t (v) VALUES (1)"))
                raise RuntimeError
        async with db.write():
            await db.execute(sa.text("INSERT INTO t (v) VALUES (2)"))
            with pytest.raises(RuntimeError):
                async with db._db.transaction():  # not a root: the original start (a SAVEPOINT)
                    await db.execute(sa.text("INSERT INTO t (v) VALUES (3)"))
                    raise RuntimeError
        assert [row["v"] for row in await db.fetch_all(sa.text("SELECT v FROM t"))] == [2]


@pytest.mark.asyncio
async def test_sqlite_connections_wait_for_another_writer_and_use_wal(tmp_path: Path):
    async with connected(scratch_sqlite(tmp_path)[0]) as db:
        # sqlite3's timeout is the busy timeout: Database(url, timeout=30) reached the driver.
        assert await db.fetch_val(sa.text("PRAGMA busy_timeout")) == 30_000
        assert await db.fetch_val(sa.text("PRAGMA journal_mode")) == "wal"


@pytest.mark.asyncio
async def test_every_sqlite_connection_that_writes_syncs_each_commit(tmp_path: Path):
    """synchronous=FULL in WAL: a commit returns once the WAL is on disk, so an answer given after
    it survives a power loss, whatever the SQLite build's default (docs/operations.md)."""
    async with connected(scratch_sqlite(tmp_path)[0]) as db:
        async with db.write():
            assert await db.fetch_val(sa.text("PRAGMA synchronous")) == 2  # FULL
        assert await db.sqlite_transaction(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 2
        assert await db.sqlite_transaction(lambda c: c.execute("PRAGMA busy_timeout").fetchone()[0]) == 30_000


@pytest.mark.asyncio
async def test_a_sqlite_group_transaction_is_all_or_nothing_and_takes_turns(tmp_path: Path):
    url, path = scratch_sqlite(tmp_path)
    async with connected(url) as db:
        await db.execute(sa.text("CREATE TABLE t (v INTEGER)"))

        def half_then_fail(connection: sqlite3.Connection) -> None:
            connection.execute("INSERT INTO t (v) VALUES (1)")
            raise RuntimeError

        with pytest.raises(RuntimeError):
            await db.sqlite_transaction(half_then_fail)
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            async with db.write():
                # A writer of this process holds the lock: the group waits its turn, it does not
                # meet "database is locked"; no other process gets in meanwhile.
                waiting = asyncio.create_task(
                    db.sqlite_transaction(lambda c: c.execute("INSERT INTO t (v) VALUES (2)").rowcount),
                    context=contextvars.Context(),  # another request's, outside this write()
                )
                await asyncio.sleep(0.05)
                assert not waiting.done()
                await db.execute(sa.text("INSERT INTO t (v) VALUES (3)"))
            assert await waiting == 1
            assert sorted(v for (v,) in other.execute("SELECT v FROM t")) == [2, 3]
        finally:
            other.close()


# --- PostgreSQL: the compiled cache ---------------------------------------------------------------


def _connection() -> PostgresConnection:
    backend = PostgresBackend(NOT_A_SERVER)
    return PostgresConnection(backend, backend._dialect)


def test_sqlalchemy_still_has_what_the_compiled_cache_reads():
    connection = _connection()
    assert connection._dialect.paramstyle == "pyformat"  # the "%(name)s" that `% mapping` numbers
    query = sa.select(appeals.c.id).where(appeals.c.slug == "a").limit(3)
    key = query._generate_cache_key()
    assert key is not None and hasattr(key, "key") and hasattr(key, "bindparams")
    compiled = query.compile(dialect=connection._dialect, cache_key=key)
    assert "extracted_parameters" in inspect.signature(compiled.construct_params).parameters
    assert isinstance(compiled._bind_processors, Mapping)
    assert [entry[0] for entry in compiled._result_columns] == ["id"]
    assert all(hasattr(bind, "expanding") for bind in compiled.binds.values())
    assert isinstance(compiled.literal_execute_params, frozenset)
    assert list(inspect.signature(compiled_cache._original_compile).parameters) == ["self", "query"]


def test_installing_replaces_postgres_compile_on_the_class():
    Database(NOT_A_SERVER)  # a PostgreSQL Database installs the cache; it connects to nothing yet
    assert PostgresConnection._compile is compiled_cache._compile
    assert _connection()._compile.__func__ is compiled_cache._compile  # type: ignore[attr-defined]


WHEN = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)

#: Statement shapes of the application's kinds, each made from one value: compiled once for the
#: first value, the second must come out of the cache with its own parameters.
SHAPES: dict[str, Callable[[int], Any]] = {
    "select": lambda n: sa.select(appeals.c.id, appeals.c.slug).where(appeals.c.slug == f"appeal-{n}"),
    "limit and offset": lambda n: (
        sa.select(endorsements.c.id)
        .where(endorsements.c.country == "DE")
        .order_by(endorsements.c.id)
        .limit(n)
        .offset(n * 10)
    ),
    "datetime bind processor": lambda n: sa.select(endorsements.c.id).where(
        endorsements.c.listed_at <= WHEN + dt.timedelta(days=n)
    ),
    "insert": lambda n: endorsements.insert().values(
        **endorsement_row({"id": 1, "moderation": "post"}, n, created_at=WHEN, updated_at=WHEN, confirmed_at=WHEN)
    ),
    "update": lambda n: (
        sa.update(endorsements)
        .where(endorsements.c.id == n)
        .values(state="withdrawn", updated_at=WHEN + dt.timedelta(hours=n))
    ),
    "delete": lambda n: sa.delete(endorsements).where(endorsements.c.id == n),
    "text": lambda n: sa.text("SELECT :a + :b AS total").bindparams(a=n, b=2 * n),
    "expanding IN (not cached)": lambda n: sa.select(endorsements.c.id).where(
        endorsements.c.country.in_(["DE", "FR"][: n % 2 + 1])
    ),
    "DDL (not cached)": lambda n: sa.schema.CreateTable(sa.Table(f"t{n}", sa.MetaData(), sa.Column("v", sa.Integer))),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_the_cached_compile_gives_what_databases_compile_gives(shape: str):
    connection = _connection()
    for n in (1, 2, 1):
        query = SHAPES[shape](n)
        ours = compiled_cache._compile(connection, query)
        theirs = compiled_cache._original_compile(connection, SHAPES[shape](n))
        assert ours[0] == theirs[0]
        assert ours[1] == theirs[1], n  # the second value's parameters, not the first's
        assert ours[2] == theirs[2]


def _sqlite_connection() -> SQLiteConnection:
    backend = SQLiteBackend("sqlite:///never-opened.db")  # compiling opens no file
    return SQLiteConnection(backend._pool, backend._dialect)


def test_installing_replaces_sqlite_compile_on_the_class(tmp_path: Path):
    Database(scratch_sqlite(tmp_path)[0])
    assert SQLiteConnection._compile is compiled_cache._sqlite_compile
    assert list(inspect.signature(compiled_cache._original_sqlite_compile).parameters) == ["self", "query"]
    assert _sqlite_connection()._dialect.paramstyle == "qmark"


@pytest.mark.parametrize("shape", SHAPES)
def test_the_cached_sqlite_compile_gives_what_databases_compile_gives(shape: str):
    connection = _sqlite_connection()
    for n in (1, 2, 1):
        ours = compiled_cache._sqlite_compile(connection, SHAPES[shape](n))
        theirs = compiled_cache._original_sqlite_compile(connection, SHAPES[shape](n))
        assert ours[0] == theirs[0]
        assert ours[1] == theirs[1], n  # the second value's parameters, not the first's
        assert ours[2] == theirs[2]
        struct = getattr(theirs[3].context, "result_column_struct", None)
        assert getattr(ours[3].context, "result_column_struct", None) == struct


@pytest.mark.asyncio
async def test_sqlite_queries_reuse_their_compiled_form_across_databases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A second `Database` (another app in the same process: each test makes one) compiles
    nothing the first compiled, and reads its rows right: dates as aware datetimes, names."""
    compiles: list[Any] = []
    compile_ = CompilerElement.compile

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(self, sa.Select):  # not the PRAGMA each new connection runs
            compiles.append(self)
        return compile_(self, *args, **kwargs)

    url, _path = scratch_sqlite(tmp_path)
    await upgrade_async(url)
    async with connected(url) as db:
        await ensure_demo_appeal(db)
    monkeypatch.setattr(compiled_cache, "_cache", OrderedDict())
    monkeypatch.setattr(CompilerElement, "compile", counting)

    def by_slug(slug: str) -> Any:
        return sa.select(appeals.c.id, appeals.c.slug, appeals.c.created_at).where(appeals.c.slug == slug)

    async with connected(url) as first_db:
        first = await first_db.fetch_one(by_slug(DEMO_SLUG))
    assert len(compiles) == 1
    async with connected(url) as second_db:
        assert await second_db.fetch_one(by_slug("no-such-appeal")) is None
        again = await second_db.fetch_one(by_slug(DEMO_SLUG))
    assert len(compiles) == 1, "the second Database compiled the statement again: the cache is not shared"
    assert first is not None and again is not None
    assert (first["id"], first["slug"], first["created_at"]) == (again["id"], again["slug"], again["created_at"])
    assert again["created_at"].tzinfo is not None


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql://"):
        pytest.skip("needs a PostgreSQL server: this runs in the PostgreSQL pass")
    return database_url


@pytest.mark.asyncio
async def test_postgres_queries_reuse_their_compiled_form(postgres_url: str, monkeypatch: pytest.MonkeyPatch):
    compiles: list[Any] = []
    compile_ = CompilerElement.compile

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        compiles.append(self)
        return compile_(self, *args, **kwargs)

    async with connected(postgres_url) as db:
        await ensure_demo_appeal(db)

        def by_slug(slug: str) -> Any:
            return sa.select(appeals.c.id, appeals.c.slug).where(appeals.c.slug == slug)

        monkeypatch.setattr(compiled_cache, "_cache", OrderedDict())  # no entry from an earlier test
        monkeypatch.setattr(CompilerElement, "compile", counting)
        first = await db.fetch_one(by_slug(DEMO_SLUG))
        assert len(compiles) == 1
        assert await db.fetch_one(by_slug("no-such-appeal")) is None
        again = await db.fetch_one(by_slug(DEMO_SLUG))
        assert len(compiles) == 1, "databases compiled the same statement again: the compiled cache is not in use"
        assert first is not None and again is not None
        assert (first["id"], first["slug"]) == (again["id"], again["slug"]) and first["slug"] == DEMO_SLUG


# --- PostgreSQL: the pool and the raw connection --------------------------------------------------


@pytest.mark.asyncio
async def test_postgres_connections_go_back_to_the_pool_without_a_reset(postgres_url: str):
    async with connected(postgres_url) as db:
        async with db._db.connection() as connection:
            await connection.raw_connection.execute("SET application_name = 'petition-probe'")
        # The pool keeps one connection (min_size=1) and hands it out again; asyncpg's default
        # reset would have run RESET ALL on it.
        assert await db.fetch_val(sa.text("SHOW application_name")) == "petition-probe"
        assert db._db._backend._options["reset"] is _keep_session


@pytest.mark.asyncio
async def test_raw_postgres_statements_run_in_the_write_transaction(postgres_url: str):
    async with connected(postgres_url) as db:
        await ensure_demo_appeal(db)
        with pytest.raises(RuntimeError):
            async with db.write():
                await db.execute(sa.update(appeals).where(appeals.c.slug == DEMO_SLUG).values(slug="renamed"))
                rows = await db.fetch_all_raw("SELECT slug FROM appeals WHERE slug = $1", "renamed")
                assert [row["slug"] for row in rows] == ["renamed"]  # sees the uncommitted change
                raise RuntimeError
        assert await db.fetch_all_raw("SELECT slug FROM appeals WHERE slug = $1", "renamed") == []


# --- both backends --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_record_values_are_what_the_columns_give(database_url: str):
    await asyncio.to_thread(insert_endorsements, database_url, 12)
    query = (
        sa.select(*PUBLIC_COLUMNS, endorsements.c.authorised, endorsements.c.confirmed_at)
        .select_from(PUBLIC_FROM)
        .order_by(endorsements.c.id)
    )
    names = [column.name for column in query.selected_columns]
    async with connected(database_url) as db:
        values = await db.fetch_values(query)
        rows = await db.fetch_all(query)
    assert len(values) == 12
    assert values == [tuple(row[name] for name in names) for row in rows]
    assert all(isinstance(value[names.index("listed_at")], dt.datetime) for value in values)
