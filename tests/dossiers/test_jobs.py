"""Dossier builds as jobs: each claimed by one worker, stale ones taken over."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from petition.appeals.queries import DEMO_SLUG, ensure_demo_appeal, get_appeal
from petition.db import Database
from petition.dossiers import jobs
from petition.dossiers.tables import dossiers


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
