"""Bulk approval: one set-based UPDATE for N endorsements vs N single approvals (the baseline).

    .venv/bin/python bench/bulk_moderation.py [N] [DATABASE_URL]

Prints both times and the ratio, measured in the same run on the same database
(a fresh SQLite file unless a DATABASE_URL of an empty, migrated database is given).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time

import sqlalchemy as sa

from petition.appeals.queries import create_appeal
from petition.appeals.states import Moderation
from petition.db import Database
from petition.endorsements.lifecycle import Event, decide
from petition.endorsements.tables import endorsements
from petition.migrations.runner import upgrade
from petition.schema import utcnow


async def _seed(db: Database, appeal_id: int, n: int, prefix: str) -> list[int]:
    now = utcnow()
    rows = [
        {
            "appeal_id": appeal_id,
            "organisation_name": f"Org {prefix}{i}",
            "name_normalised": f"org {prefix}{i}",
            "country": "DE",
            "city": "",
            "organisation_type": "peace",
            "website": "",
            "contact_name": "C",
            "contact_role": "",
            "contact_email": f"{prefix}{i}@example.org",
            "email_canonical": f"{prefix}{i}@example.org",
            "authorised": True,
            "consent_version": "x",
            "visibility": "public",
            "comment": "",
            "language": "en",
            "text_language": "en",
            "text_hash": "0" * 64,
            "state": "confirmed",
            "token_nonce": f"{i:032x}",
            "created_at": now,
            "updated_at": now,
            "confirmed_at": now,
        }
        for i in range(n)
    ]
    async with db.write():
        for start in range(0, n, 200):
            await db.execute(endorsements.insert().values(rows[start : start + 200]))
    found = await db.fetch_all(sa.select(endorsements.c.id).where(endorsements.c.appeal_id == appeal_id))
    return [int(r["id"]) for r in found]


async def main(n: int, url: str) -> None:
    db = Database(url)
    await db.connect()
    try:
        single_appeal = await create_appeal(db, slug=f"bench-single-{time.time_ns()}", moderation=Moderation.PRE)
        bulk_appeal = await create_appeal(db, slug=f"bench-bulk-{time.time_ns()}", moderation=Moderation.PRE)
        single_ids = await _seed(db, single_appeal, n, "s")
        bulk_ids = await _seed(db, bulk_appeal, n, "b")
        started = time.perf_counter()
        for endorsement_id in single_ids:
            await decide(db, ids=[endorsement_id], event=Event.APPROVE, organiser_id=None)  # type: ignore[arg-type]
        baseline = time.perf_counter() - started
        started = time.perf_counter()
        changed = await decide(db, ids=bulk_ids, event=Event.APPROVE, organiser_id=None)  # type: ignore[arg-type]
        bulk = time.perf_counter() - started
        assert len(changed) == n
    finally:
        await db.disconnect()
    print(f"{n} approvals one by one (baseline): {baseline:.3f} s")
    print(f"{n} approvals in one set-based call: {bulk:.3f} s")
    print(f"ratio bulk/baseline: {bulk / baseline:.3f} ({baseline / bulk:.1f}x faster)")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    if len(sys.argv) > 2:
        database_url = sys.argv[2]
    else:
        database_url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
        upgrade(database_url)
    asyncio.run(main(count, database_url))
