"""Dossier builds as jobs: each claimed by one worker, stale ones taken over."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import stat
import time
from pathlib import Path

import pytest

from petition.appeals.queries import DEMO_SLUG, ensure_demo_appeal, get_appeal
from petition.db import Database
from petition.dossiers import jobs
from petition.dossiers.tables import dossiers
from petition.settings import Settings
from tests.conftest import make_settings
from tests.factories import add_endorsements


@pytest.mark.asyncio
async def test_workers_never_claim_the_same_build_and_take_over_stale_ones(
    database_url: str,
) -> None:
    a, b = Database(database_url), Database(database_url)
    await a.connect()
    await b.connect()
    try:
        await ensure_demo_appeal(a)
        appeal = await get_appeal(a, slug=DEMO_SLUG)
        first = await jobs.queue_build(a, appeal_id=appeal["id"], country="de")
        second = await jobs.queue_build(a, appeal_id=appeal["id"], country="FR")
        claims = await asyncio.gather(
            jobs.claim_next(a, worker_id="w1", lease_seconds=60),
            jobs.claim_next(b, worker_id="w2", lease_seconds=60),
        )
        assert sorted(row["id"] for row in claims) == [first, second]
        assert {row["country"] for row in claims} == {"DE", "FR"}
        assert await jobs.claim_next(a, worker_id="w3", lease_seconds=60) is None

        # w1 stops reporting: once its lease is old, another worker takes the build over,
        # and w1's late progress is refused.
        w1_row = next(row for row in claims if row["claimed_by"] == "w1")
        async with a.write():
            await a.execute(
                dossiers.update()
                .where(dossiers.c.id == w1_row["id"])
                .values(claimed_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=120))
            )
        taken = await jobs.claim_next(b, worker_id="w4", lease_seconds=60)
        assert taken is not None and taken["id"] == w1_row["id"]
        assert not await jobs.set_progress(a, dossier_id=w1_row["id"], worker_id="w1", progress=50)
        assert await jobs.set_progress(b, dossier_id=w1_row["id"], worker_id="w4", progress=50)
    finally:
        await a.disconnect()
        await b.disconnect()


def test_a_build_leaves_only_its_dossier_and_clears_what_dead_builds_left(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(database_url, tmp_path / "data", None)
    add_endorsements(database_url, rows=[dict(organisation_name="Friedenskreis Kassel")])
    folder = jobs.dossier_dir(settings)
    folder.mkdir(parents=True)
    # What a build that died left behind (untouched for longer than twice the lease), and
    # the working directory of a build that is still running.
    dead, running = folder / ".build-7-dead", folder / ".build-8-running"
    for directory in (dead, running):
        directory.mkdir()
        (directory / "chunk-00000.pdf").write_bytes(b"%PDF-1.7")
    long_ago = time.time() - 3 * settings.dossier_lease_seconds
    os.utime(dead, (long_ago, long_ago))

    built = asyncio.run(_build(database_url, settings))
    assert built.path.parent == folder and stat.S_IMODE(built.path.stat().st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == sorted([built.path.name, running.name])

    # A build that fails half-way removes its working files too, and is recorded as failed.
    async def broken_renderer(*args: object, workdir: Path, **kwargs: object) -> int:
        (workdir / "chunk-00000.pdf").write_bytes(b"%PDF-1.7")  # noqa: ASYNC240 - a test's stand-in
        raise RuntimeError("the renderer broke")

    monkeypatch.setattr(jobs, "render_pdf_file", broken_renderer)
    with pytest.raises(RuntimeError, match="the renderer broke"):
        asyncio.run(_build(database_url, settings))
    assert sorted(p.name for p in folder.iterdir()) == sorted([built.path.name, running.name])
    rows = asyncio.run(_dossiers(database_url))
    assert [row["state"] for row in rows] == ["failed", "done"]
    assert "the renderer broke" in rows[0]["error"]


async def _build(database_url: str, settings: Settings) -> jobs.Built:
    db = Database(database_url)
    await db.connect()
    try:
        appeal = await get_appeal(db, slug=DEMO_SLUG)
        dossier_id = await jobs.start_build(db, appeal_id=appeal["id"], country="DE", worker_id="w")
        row = await jobs.get_dossier(db, dossier_id=dossier_id)
        return await jobs.build(db, settings, dossier=row, worker_id="w")
    finally:
        await db.disconnect()


async def _dossiers(database_url: str) -> list:
    db = Database(database_url)
    await db.connect()
    try:
        return await jobs.list_dossiers(db)
    finally:
        await db.disconnect()
