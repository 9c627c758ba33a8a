"""The one place that knows about `databases` (frozen since 0.9.0) and the two backends.

SQLite is the embedded default and must never drop a signature with "database is
locked": every write goes through `Database.write()` (or, for the grouped intake's many
statements at once, `Database.sqlite_transaction()`), which serialise writers in this
process and run them in one transaction. PostgreSQL needs no such lock.

SQLite runs in WAL mode with `synchronous=FULL` on every connection that writes: a
commit returns only once the WAL is on disk (fsync), so whatever a request answers
after its transaction survives a crash of the process and a power loss alike
(docs/operations.md, "Durability on SQLite").
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import databases
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.sql import ClauseElement

from petition.settings import PRIVATE_FILE_MODE, create_private_file, private_directory

Row = Mapping[str, Any]
log = logging.getLogger("petition.db")

# These drivers log every query with its parameters at DEBUG: email addresses and
# signed links would reach the logs whenever someone turns debugging on.
for _name in ("databases", "aiosqlite", "asyncpg"):
    logging.getLogger(_name).setLevel(logging.INFO)

_write_depth: contextvars.ContextVar[int] = contextvars.ContextVar("petition_write_depth", default=0)

T = TypeVar("T")

#: Seconds a SQLite writer waits for another process's write lock (a `petition worker`, a
#: second `serve`, `petition backup`) before "database is locked".
SQLITE_BUSY_TIMEOUT = 30.0

#: Set on every SQLite connection before it writes. In WAL mode FULL syncs the WAL at each
#: commit: a committed row survives a power loss. (NORMAL would sync only at checkpoints:
#: safe from a crash of the process, but the last commits could be lost with the power.)
SQLITE_SYNCHRONOUS = "FULL"


def _sqlite_transactions_begin_immediate() -> None:
    """Every transaction here writes (Database.write): take SQLite's write lock at BEGIN.

    A deferred transaction that reads first and writes later fails at once with
    "database is locked" (SQLITE_BUSY_SNAPSHOT, no busy wait) when another process
    (a `petition worker`, a second `serve`) committed in between; BEGIN IMMEDIATE waits
    for the lock instead, up to the connection's timeout.
    """
    from databases.backends.sqlite import SQLiteTransaction

    if getattr(SQLiteTransaction.start, "_petition_immediate", False):
        return
    original = SQLiteTransaction.start

    async def start(self: SQLiteTransaction, is_root: bool, extra_options: dict[Any, Any]) -> None:
        if not is_root:
            await original(self, is_root, extra_options)
            return
        assert self._connection._connection is not None, "Connection is not acquired"
        self._is_root = True
        # Each acquire opens a new connection: say how its commits reach the disk every time.
        async with self._connection._connection.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}") as cursor:
            await cursor.close()
        async with self._connection._connection.execute("BEGIN IMMEDIATE") as cursor:
            await cursor.close()

    start._petition_immediate = True  # type: ignore[attr-defined]
    SQLiteTransaction.start = start  # type: ignore[method-assign]


#: Query parameters of a postgresql:// DATABASE_URL that petition reads itself (the pool's
#: size, and asyncpg's statement cache, 0 behind PgBouncer's transaction pooling): no driver
#: is handed them as they are.
POOL_PARAMETERS = ("min_size", "max_size", "statement_cache_size")

#: Idle connections are closed after this many seconds: a quiet process does not keep its peak's.
IDLE_CONNECTION_SECONDS = 45.0


def url_parameter(url: str, name: str) -> str | None:
    return dict(parse_qsl(urlsplit(url).query)).get(name)


def without_pool_parameters(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in POOL_PARAMETERS]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy (async driver) spelling of a DATABASE_URL."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + without_pool_parameters(url)[len("postgresql://") :]
    return url


def server_address(url: str) -> str:
    """host:port of a postgresql:// URL, for messages: never its user or password."""
    parts = urlsplit(url)
    return f"{parts.hostname or url_parameter(url, 'host') or 'localhost'}:{parts.port or 5432}"


def _retryable(exc: BaseException) -> bool:
    """The server is not there (yet): refused, unreachable, starting, shutting down, or full."""
    import asyncpg

    return isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError
        | asyncpg.ConnectionDoesNotExistError,
    )


_SQLITE_DIALECT = sqlite_dialect.dialect(paramstyle="qmark")


def sqlite_binder(column: sa.Column[Any]) -> Callable[[Any], Any]:
    """A value of `column` as the sqlite3 driver takes it, as SQLAlchemy would bind it (a
    UTCDateTime as its naive UTC text, a Boolean as 0 or 1)."""
    processor = column.type.dialect_impl(_SQLITE_DIALECT).bind_processor(_SQLITE_DIALECT)
    return processor if processor is not None else _as_it_is


def _as_it_is(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class SqliteInsert:
    """An INSERT compiled once for `Database.sqlite_transaction()`: its SQL and, in its
    placeholders' order, the columns whose values `params` binds."""

    sql: str
    columns: tuple[str, ...]
    binders: tuple[Callable[[Any], Any] | None, ...]  # None: the value as it is

    @classmethod
    def of(cls, table: sa.Table, columns: Sequence[str], *, do_nothing_on: Sequence[str] = ()) -> SqliteInsert:
        """INSERT INTO table (columns) VALUES (?, …), doing nothing when it meets the unique
        constraint over `do_nothing_on`."""
        statement = sqlite_dialect.insert(table).values({name: sa.bindparam(name) for name in columns})
        if do_nothing_on:
            statement = statement.on_conflict_do_nothing(index_elements=list(do_nothing_on))
        compiled = statement.compile(dialect=_SQLITE_DIALECT)
        order = tuple(compiled.positiontup or ())
        assert sorted(order) == sorted(columns), (order, columns)
        binders = [sqlite_binder(table.c[name]) for name in order]
        return cls(compiled.string, order, tuple(None if bind is _as_it_is else bind for bind in binders))

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            values[name] if bind is None else bind(values[name])
            for name, bind in zip(self.columns, self.binders, strict=True)
        )


class DatabaseUnavailable(RuntimeError):
    """The database did not answer within DATABASE_WAIT_SECONDS; the message says where and why."""


async def wait_for_database(url: str, max_wait: float, *, first_delay: float = 0.5, max_delay: float = 10.0) -> None:
    """Return once PostgreSQL at `url` accepts a connection; retry with capped exponential backoff.

    Processes started with (or before) the database — a host booting, a container platform —
    come up when it answers instead of exiting. Errors that waiting does not cure (a wrong
    password, a missing database) are raised at once; after `max_wait` seconds in all,
    DatabaseUnavailable. SQLite: nothing to wait for.
    """
    if not url.startswith("postgresql://"):
        return
    where = server_address(url)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, max_wait)
    delay = first_delay
    while True:
        # A pool of one, made as the process's own will be: the same host, TLS and login.
        probe = Database(url, pool_size=1, application_name="petition-start")
        try:
            await asyncio.wait_for(probe.connect(), 10)
        except Exception as exc:
            if not _retryable(exc):
                raise
            left = deadline - loop.time()
            if left <= 0:
                raise DatabaseUnavailable(
                    f"PostgreSQL at {where} did not answer within {max_wait:g} s ({type(exc).__name__}): "
                    "check DATABASE_URL and that the server is running (DATABASE_WAIT_SECONDS sets how long to wait)"
                ) from None
            pause = min(delay, left)
            log.warning(
                "PostgreSQL at %s is not answering (%s); trying again in %.1f s (giving up in %.0f s)",
                where,
                type(exc).__name__,
                pause,
                left,
            )
            await asyncio.sleep(pause)
            delay = min(delay * 2, max_delay)
            continue
        await probe.disconnect()
        return


def sqlite_file(url: str) -> Path | None:
    """The file of a sqlite:/// DATABASE_URL; None for an in-memory database."""
    path = url[len("sqlite:///") :].split("?", 1)[0] if url.startswith("sqlite:///") else ""
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def create_sqlite_file(url: str) -> None:
    """Create the SQLite database file, and its directory, for the service's user only.

    SQLite (and Alembic, which runs first) would create a missing file 0644 less the umask; it
    gives the -wal, -shm and journal files the database file's own mode. So the file is made
    0600 here before either opens it. A file from before this rule is narrowed to 0600 once.
    """
    path = sqlite_file(url)
    if path is None:
        return
    private_directory(path.parent)
    if create_private_file(path):
        return
    for name in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        try:
            if name.stat().st_mode & 0o077:
                name.chmod(PRIVATE_FILE_MODE)
                log.warning("%s could be read by other users of this machine: now mode 600", name)
        except FileNotFoundError:
            continue
        except OSError as exc:  # not ours to change: say so, and carry on
            log.warning("%s can be read by other users of this machine: %s", name, exc.strerror)


class Database:
    def __init__(self, url: str, *, pool_size: int | None = None, application_name: str = "petition") -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        from petition import compiled_cache

        compiled_cache.install()
        if self.is_sqlite:
            create_sqlite_file(url)
            _sqlite_transactions_begin_immediate()
            # Wait for another process's writer instead of failing at once.
            self._db = databases.Database(url, timeout=SQLITE_BUSY_TIMEOUT)
        else:
            statement_cache = url_parameter(url, "statement_cache_size")
            options: dict[str, Any] = {"statement_cache_size": int(statement_cache)} if statement_cache else {}
            # Every connection this process holds comes from this pool: web requests, the
            # in-process workers and the intake's id reservation wait here for one when all
            # are busy (asyncpg queues them), so `pool_size` bounds the process.
            self.pool_size = pool_size or int(url_parameter(url, "max_size") or 10)
            self._db = databases.Database(
                without_pool_parameters(url),
                min_size=1,
                max_size=self.pool_size,
                max_inactive_connection_lifetime=IDLE_CONNECTION_SECONDS,
                command_timeout=30,
                reset=_keep_session,
                server_settings={"application_name": application_name},
                **options,
            )
        self._lock: asyncio.Lock | None = None
        # SQLite: the connection of sqlite_transaction(), opened in and used by its one thread.
        self._writer: ThreadPoolExecutor | None = None
        self._writer_connection: sqlite3.Connection | None = None
        self._ids: dict[str, list[int]] = {}
        self._id_locks: dict[str, asyncio.Lock] = {}
        self._id_refills: dict[str, asyncio.Task[None]] = {}

    async def connect(self) -> None:
        self._lock = asyncio.Lock()
        # Reserved ids belong to one connection's life: the sequence may have been reset since.
        self._ids.clear()
        self._id_locks.clear()
        await self._db.connect()
        if self.is_sqlite:
            await self._db.execute("PRAGMA journal_mode=WAL")

    async def disconnect(self) -> None:
        for task in list(self._id_refills.values()):
            task.cancel()
        self._ids.clear()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await asyncio.get_running_loop().run_in_executor(writer, self._close_writer_connection)
            writer.shutdown()
        await self._db.disconnect()

    @property
    def dialect(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    async def fetch_one(self, query: ClauseElement | str, values: dict[str, Any] | None = None) -> Row | None:
        return await self._db.fetch_one(query, values)  # type: ignore[return-value]

    async def fetch_all(self, query: ClauseElement | str, values: dict[str, Any] | None = None) -> Sequence[Row]:
        return await self._db.fetch_all(query, values)  # type: ignore[return-value]

    async def fetch_val(self, query: ClauseElement | str, values: dict[str, Any] | None = None) -> Any:
        return await self._db.fetch_val(query, values)

    async def fetch_values(self, query: ClauseElement) -> list[tuple[Any, ...]]:
        """The rows of a query as plain tuples, in the order of its columns: for reads of many rows.

        Each `row["col"]` on a `databases` record looks the column's type up again, which is
        most of the cost of streaming a long list; here each row becomes a tuple once. The
        values are those `row["col"]` gives (datetimes: aware on SQLite, naive UTC on PostgreSQL).
        """
        # Both backends' records have values() (typed only as databases' abstract Record).
        return [tuple(record.values()) for record in await self._db.fetch_all(query)]  # type: ignore[attr-defined]

    async def execute(self, query: ClauseElement | str, values: dict[str, Any] | None = None) -> Any:
        return await self._db.execute(query, values)

    async def execute_many(self, query: ClauseElement | str, values: list[dict[str, Any]]) -> None:
        await self._db.execute_many(query, values)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        """One write transaction; on SQLite, writers of this process take turns.

        Re-entrant within a task, so a query that writes can be called from
        another that already holds the transaction.
        """
        depth = _write_depth.get()
        if depth:
            token = _write_depth.set(depth + 1)
            try:
                yield
            finally:
                _write_depth.reset(token)
            return
        assert self._lock is not None, "Database.connect() was not awaited"
        if self.is_sqlite:
            async with self._lock:
                token = _write_depth.set(1)
                try:
                    async with self._db.transaction():
                        yield
                finally:
                    _write_depth.reset(token)
        else:
            token = _write_depth.set(1)
            try:
                async with self._db.transaction():
                    yield
            finally:
                _write_depth.reset(token)

    async def sqlite_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(connection)` in one SQLite write transaction, in this process's writer thread.

        For a write of many statements (the grouped intake): they run in one hop to a thread of
        their own on one long-lived connection, where each statement through `databases` would
        cost a hop (and a transaction a new connection). BEGIN IMMEDIATE waits up to
        SQLITE_BUSY_TIMEOUT for another process's writer; COMMIT syncs (SQLITE_SYNCHRONOUS);
        anything `work` raises rolls the whole transaction back. Takes its turn with `write()`'s
        writers in this process; values are bound as SQLAlchemy would (`SqliteInsert`, `sqlite_binder`).
        """
        assert self.is_sqlite and self._lock is not None, "Database.connect() was not awaited on SQLite"
        assert not _write_depth.get(), "not inside write(): this is a transaction of its own"
        loop = asyncio.get_running_loop()
        async with self._lock:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
            done = loop.run_in_executor(self._writer, self._in_transaction, work)
            try:
                return await asyncio.shield(done)
            except asyncio.CancelledError:
                # The transaction ends in its thread (committed or rolled back) before the next
                # writer of this process begins.
                await asyncio.wait([done])
                raise

    def _in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        connection = self._writer_connection
        if connection is None:
            path = sqlite_file(self.url)
            # (An in-memory database is one per connection, as `databases` opens them: no use here.)
            assert path is not None, "a SQLite database file"
            connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT, isolation_level=None)
            connection.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
            self._writer_connection = connection
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            # A broken connection is not kept: the next transaction opens a new one.
            self._close_writer_connection()
            raise
        try:
            result = work(connection)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                try:
                    connection.execute("ROLLBACK")
                except sqlite3.Error:
                    self._close_writer_connection()
            raise
        return result

    def _close_writer_connection(self) -> None:
        connection, self._writer_connection = self._writer_connection, None
        if connection is not None:
            connection.close()

    async def fetch_all_raw(self, sql: str, *args: Any) -> Sequence[Row]:
        """One hand-written PostgreSQL statement straight through asyncpg (prepared once per connection).

        For the few hot paths that must be one round trip; everything else goes through
        SQLAlchemy Core. Inside `write()` it runs in that transaction.
        """
        assert not self.is_sqlite, "asyncpg statements are for PostgreSQL"
        async with self._db.connection() as connection:
            return await connection.raw_connection.fetch(sql, *args)  # type: ignore[no-any-return]

    async def reserve_id(self, table: str, block: int = 256) -> int:
        """An id from the table's PostgreSQL sequence, known before the INSERT that uses it.

        Taken a block at a time, so a row and what refers to it — its email — can be
        written by one statement. The next block is fetched in the background when a
        quarter of this one is left, so no request waits for it under load. Ids a process
        did not use when it stops are gaps, as after a rollback.
        """
        assert not self.is_sqlite, "sequences are PostgreSQL's"
        ids = self._ids.setdefault(table, [])
        if not ids:
            await self._refill_ids(table, block)
        elif len(ids) <= block // 4 and table not in self._id_refills:
            task = asyncio.get_running_loop().create_task(self._refill_ids(table, block))
            self._id_refills[table] = task
            task.add_done_callback(lambda done: self._refilled(table, done))
        return ids.pop()

    def _refilled(self, table: str, task: asyncio.Task[None]) -> None:
        self._id_refills.pop(table, None)
        if not task.cancelled() and task.exception() is not None:
            # The next request that finds no id left tries again, in the foreground.
            log.warning("reserving ids for %s failed: %s", table, type(task.exception()).__name__)

    async def _refill_ids(self, table: str, block: int) -> None:
        lock = self._id_locks.setdefault(table, asyncio.Lock())
        async with lock:
            ids = self._ids[table]
            if len(ids) > block // 4:
                return
            rows = await self.fetch_all(
                sa.text(
                    "SELECT nextval(pg_get_serial_sequence(:t, 'id')) AS id FROM generate_series(1, :n)"
                ).bindparams(t=table, n=block)
            )
            # Popped from the end: the lowest first, the ones left over after them.
            ids[:0] = sorted((int(row["id"]) for row in rows), reverse=True)

    def drop_reserved_ids(self, table: str) -> None:
        """Forget the ids reserved for `table` (they clashed with stored rows); a refill under way
        fills a list nobody reads any more."""
        self._ids.pop(table, None)

    async def repair_sequence(self, table: str) -> tuple[int, int] | None:
        """Move `table`'s id sequence past its highest id when it has fallen behind (a restore while
        petition ran): (the sequence's next value, the highest id) when it was behind, else None."""
        assert not self.is_sqlite and table.isidentifier(), table
        row = await self.fetch_one(
            sa.text(
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) AS next, "  # noqa: S608 - an identifier of ours
                f"(SELECT max(id) FROM {table}) AS top"
            )
        )
        assert row is not None
        if row["top"] is None or row["next"] > row["top"]:
            return None
        await self.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {int(row['top'])})"))
        return int(row["next"]), int(row["top"])

    def pool_use(self) -> dict[str, int] | None:
        """This process's PostgreSQL connections (open, in use, the most it may hold); None on SQLite."""
        # asyncpg's pool, held by databases' backend (tests/test_db_internals.py checks the path).
        pool = None if self.is_sqlite else getattr(getattr(self._db, "_backend", None), "_pool", None)
        if pool is None:
            return None
        size = pool.get_size()
        return {"open": size, "in_use": size - pool.get_idle_size(), "max": pool.get_max_size()}

    async def ping(self) -> bool:
        try:
            return await asyncio.wait_for(self._db.fetch_val(sa.text("SELECT 1")), 5) == 1
        except Exception:  # noqa: BLE001 - any failure means "not answering"
            return False


async def _keep_session(connection: Any) -> None:
    """Nothing to reset when a connection goes back to the pool: asyncpg has rolled back any
    open transaction, and this application sets no session state (no SET, LISTEN, advisory
    locks or cursors). The default reset is one more round trip for every query."""


def _integrity_errors() -> tuple[type[BaseException], ...]:
    import sqlite3

    from sqlalchemy.exc import IntegrityError

    errors: list[type[BaseException]] = [IntegrityError, sqlite3.IntegrityError]
    try:
        import asyncpg

        errors.append(asyncpg.IntegrityConstraintViolationError)
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        pass
    return tuple(errors)


#: What a unique or foreign-key violation raises, whichever backend runs it.
INTEGRITY_ERRORS = _integrity_errors()
