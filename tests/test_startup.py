"""`petition serve` and `petition worker` starting as an operator starts them: several at once on an
empty PostgreSQL database, and before the database answers. Real processes, on loopback ports."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import TEST_SECRET, _admin, _with_database, postgres_server
from tests.support import PROJECT_ROOT, db_rows, free_port, wait_for


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    server = postgres_server()
    name = f"petition_start_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(server, name)
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Process:
    """A `petition` command in a process of its own; what it logs is collected as it comes."""

    def __init__(self, args: list[str], database_url: str, data_dir: Path, **env: str) -> None:
        environment = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": TEST_SECRET,
            "DATA_DIR": str(data_dir),
            "SMTP_HOST": "",
            "WORKER_POLL_INTERVAL": "0.2",
            **env,
        }
        environment.pop("BASE_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "petition.cli", *args],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def finish(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        self._close()
        return code

    def _close(self) -> None:
        if self.process.stderr is not None:
            self.process.stderr.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        self._close()


def _healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:  # noqa: S310 - loopback
            return int(answer.status)
    except OSError:
        return 0


def _serve(database_url: str, data_dir: Path, **env: str) -> tuple[Process, int]:
    port = free_port()
    return Process(["serve", "--port", str(port)], database_url, data_dir, **env), port


def test_three_web_processes_started_at_once_on_an_empty_database_all_come_up(empty_postgres: str, tmp_path: Path):
    started = [_serve(empty_postgres, tmp_path / "data") for _ in range(3)]
    try:
        for process, port in started:
            wait_for(
                lambda process=process, port=port: _healthz(port) == 200 or process.process.poll() is not None,
                timeout=120,
            )
            assert _healthz(port) == 200, process.log
    finally:
        for process, _port in started:
            process.stop()
    from alembic.script import ScriptDirectory

    from petition.migrations.runner import alembic_config

    [head] = ScriptDirectory.from_config(alembic_config(empty_postgres)).get_heads()
    assert db_rows(empty_postgres, "SELECT version_num FROM alembic_version") == [{"version_num": head}]
    assert db_rows(empty_postgres, "SELECT count(*) AS n FROM appeals") == [{"n": 1}]  # one demo appeal


class Forwarder:
    """A TCP port that refuses connections until `open()`, then forwards them to PostgreSQL."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.Server | None = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            writer.close()
            up_writer.close()

    def open(self) -> None:
        async def start() -> asyncio.Server:
            return await asyncio.start_server(self._client, "127.0.0.1", self.port)

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def close(self) -> None:
        async def shut() -> None:
            if self.server is not None:
                self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _through(url: str, port: int, password: str | None = None) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    login = f"{user}:{password}" if password else user
    return parts._replace(netloc=f"{login}@127.0.0.1:{port}").geturl()


def test_serve_waits_for_the_database_and_comes_up_when_it_answers(empty_postgres: str, tmp_path: Path):
    forwarder = Forwarder(empty_postgres)
    process, port = _serve(_through(empty_postgres, forwarder.port), tmp_path / "data", DATABASE_WAIT_SECONDS="120")
    try:
        wait_for(lambda: "not answering" in process.log or process.process.poll() is not None, timeout=60)
        assert process.process.poll() is None, process.log
        assert f"PostgreSQL at 127.0.0.1:{forwarder.port} is not answering (ConnectionRefusedError)" in process.log
        forwarder.open()
        wait_for(lambda: _healthz(port) == 200 or process.process.poll() is not None, timeout=120)
        assert _healthz(port) == 200, process.log
    finally:
        process.stop()
        forwarder.close()


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"]])
def test_a_process_gives_up_after_database_wait_seconds_with_a_clear_message(
    empty_postgres: str, tmp_path: Path, command: list[str]
):
    port = free_port()  # nothing listens there
    url = _through(empty_postgres, port, password="never-in-a-log")
    process = Process(command, url, tmp_path / "data", DATABASE_WAIT_SECONDS="1.5")
    code = process.finish()
    assert code != 0
    assert "not answering" in process.log  # it did wait, saying why
    assert f"PostgreSQL at 127.0.0.1:{port} did not answer within 1.5 s (ConnectionRefusedError)" in process.log
    assert "never-in-a-log" not in process.log


def test_a_start_on_a_database_at_head_takes_no_migration_lock(empty_postgres: str):
    """What lets `serve` start through PgBouncer's transaction pooling, where a session lock cannot
    be kept: with the schema at head, the upgrade at start returns while another session holds the
    lock (a pending upgrade would wait for it)."""
    from petition.migrations.runner import upgrade

    upgrade(empty_postgres)

    async def hold_lock_during_upgrade() -> bool:
        import asyncpg

        holder = await asyncpg.connect(empty_postgres)
        try:
            await holder.execute("SELECT pg_advisory_lock(x'7065746974696F6E'::bigint)")
            task = asyncio.ensure_future(asyncio.to_thread(upgrade, empty_postgres))
            done, _ = await asyncio.wait([task], timeout=30)
            await holder.execute("SELECT pg_advisory_unlock_all()")
            await task
            return bool(done)
        finally:
            await holder.close()

    assert asyncio.run(hold_lock_during_upgrade())


def test_web_processes_starting_together_create_one_demo_appeal(database_url: str):
    if not database_url.startswith("postgresql://"):
        pytest.skip("several processes share PostgreSQL; this runs in the PostgreSQL pass")
    from petition.appeals.queries import ensure_demo_appeal
    from petition.db import Database

    async def start_three() -> None:
        databases = [Database(database_url, pool_size=2) for _ in range(3)]
        for db in databases:
            await db.connect()
        try:
            await asyncio.gather(*(ensure_demo_appeal(db) for db in databases))
        finally:
            for db in databases:
                await db.disconnect()

    asyncio.run(start_three())
    assert db_rows(database_url, "SELECT count(*) AS n FROM appeals") == [{"n": 1}]
