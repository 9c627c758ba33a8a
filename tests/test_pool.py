"""DATABASE_POOL_SIZE bounds every connection one process holds: requests, the in-process
workers and the intake's id reservation together; when all are busy, requests wait for one."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest

from petition.settings import load_settings
from tests.conftest import make_settings
from tests.support import LiveServer, SMTPServer, csrf_from, db_rows, valid_form


def test_database_pool_size_is_read_and_checked():
    assert load_settings(env_file=None, database_pool_size="4").database_pool_size == 4
    assert load_settings(env_file=None).database_pool_size is None
    with pytest.raises(Exception, match="DATABASE_POOL_SIZE"):
        load_settings(env_file=None, database_pool_size="0")


def test_a_max_size_in_the_url_is_honoured_and_the_setting_wins():
    from petition.db import Database

    url = "postgresql://petition@127.0.0.1:1/petition?max_size=4&statement_cache_size=0"
    assert Database(url).pool_size == 4
    assert Database(url, pool_size=2).pool_size == 2
    assert Database("postgresql://petition@127.0.0.1:1/petition").pool_size == 10


def test_one_web_process_holds_at_most_its_pool_under_load(database_url: str, tmp_path: Path, smtp: SMTPServer):
    if not database_url.startswith("postgresql://"):
        pytest.skip("connection pools are PostgreSQL's; this runs in the PostgreSQL pass")
    settings = make_settings(
        database_url, tmp_path / "data", smtp, database_pool_size="3", trusted_ips="127.0.0.1", run_worker="true"
    )
    server = LiveServer(settings)
    server.start()
    seen: list[int] = []
    done = threading.Event()

    async def sample() -> None:
        import asyncpg

        conn = await asyncpg.connect(database_url)
        try:
            while not done.is_set():
                seen.append(
                    await conn.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'petition-web' "
                        "AND datname = current_database()"
                    )
                )
                await asyncio.sleep(0.01)
        finally:
            await conn.close()

    sampler = threading.Thread(target=asyncio.run, args=(sample(),))
    sampler.start()

    def endorse(n: int) -> list[int]:
        with httpx2.Client(base_url=server.url, timeout=60) as client:
            page = client.get("/appeals/protect-deserters")
            form = valid_form(organisation_name=f"Org {n}", contact_email=f"office{n}@org{n}.example")
            form["csrf_token"] = csrf_from(page.text)
            answer = client.post("/appeals/protect-deserters/endorse", data=form)
            listing = client.get("/appeals/protect-deserters/signatories")
            return [page.status_code, answer.status_code, listing.status_code]

    try:
        with ThreadPoolExecutor(max_workers=24) as pool:
            answers = list(pool.map(endorse, range(48)))
        # The in-process worker sends the 48 confirmation emails meanwhile, from the same pool.
        for _ in range(600):
            if len(smtp.sink.messages) >= 48:
                break
            done.wait(0.05)
    finally:
        done.set()
        sampler.join(30)
        server.stop()
    assert answers == [[200, 303, 200]] * 48
    assert db_rows(database_url, "SELECT count(*) AS n FROM endorsements") == [{"n": 48}]
    assert len(smtp.sink.messages) == 48
    assert seen and 1 <= max(seen) <= 3, max(seen, default=None)
