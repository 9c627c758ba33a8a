"""The public log's cost: queueing and appending 20,000 entries, proof sizes and times.

    flock /work/bench.lock .venv/bin/python bench/log_bench.py [--entries 20000] [--backend sqlite|postgresql|both]

For each backend, a fresh database (a SQLite file, or a PostgreSQL database created and
dropped) gets ENTRIES confirmed, listed endorsements (bulk-inserted, named and anonymous).
Then, in one process:

- note: `note_public_changes` over all of them, in the transactions of 2,000 each that
  `petition log backfill` uses: each gets its head and its queued leaf;
- append: `store.append` until nothing is queued (batches of 1,000, as the worker does),
  each batch hashing its leaves, storing every node it completes and signing a checkpoint;
- baseline: inserting the same leaves, as plain rows, into a table of their own with the
  same batches and statements (200 rows each): what storing the entries costs with no log
  around them.
  The script prints append / baseline;
- proofs: the size (hashes and bytes) and the mean time of an inclusion proof of 200 random
  entries and of consistency proofs from 200 random earlier sizes, read from the stored nodes.

The sign path does not touch the log (a submission lists nothing: the first entry is queued
by the Confirm); bench/load_bench.py measures it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load_bench import admin, with_database  # noqa: E402 - the bench helpers


async def measure(url: str, entries: int) -> None:
    from petition.appeals.queries import DEMO_SLUG, ensure_demo_appeal, get_appeal
    from petition.db import Database
    from petition.endorsements.public_record import note_public_changes
    from petition.endorsements.tables import endorsements, public_record_events
    from petition.migrations.runner import upgrade_async
    from petition.schema import utcnow
    from petition.transparency import store
    from petition.transparency.note import Signer
    from tests.factories import endorsement_row

    await upgrade_async(url)
    db = Database(url)
    await db.connect()
    try:
        await ensure_demo_appeal(db)
        appeal = await get_appeal(db, slug=DEMO_SLUG)
        assert appeal is not None
        now = utcnow()
        rows = [
            endorsement_row(
                appeal,
                i,
                state="confirmed",
                confirmed_at=now,
                listed_at=now,
                visibility="anonymous" if i % 50 == 0 else "public",
                organisation_name=f"Organisation {i} e.V.",
            )
            for i in range(entries)
        ]
        async with db.write():
            for first in range(0, len(rows), 200):
                await db.execute(endorsements.insert().values(rows[first : first + 200]))
        ids = [int(r[0]) for r in await db.fetch_values(sa.select(endorsements.c.id).order_by(endorsements.c.id))]

        started = time.perf_counter()
        for first in range(0, len(ids), 2000):
            async with db.write():
                await note_public_changes(db, ids[first : first + 2000])
        note_s = time.perf_counter() - started
        leaves = [str(r[0]) for r in await db.fetch_values(sa.select(public_record_events.c.leaf).order_by("id"))]

        signer = Signer.generate("bench.example/log")
        started = time.perf_counter()
        while await store.append(db, signer):
            pass
        append_s = time.perf_counter() - started

        baseline = sa.Table(
            "bench_leaves",
            sa.MetaData(),
            sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("leaf", sa.Text, nullable=False),
        )
        async with db.write():
            await db.execute(sa.text("CREATE TABLE bench_leaves (idx BIGINT PRIMARY KEY, leaf TEXT NOT NULL)"))
        started = time.perf_counter()
        for first in range(0, len(leaves), store.BATCH):
            batch = [{"idx": first + i, "leaf": leaf} for i, leaf in enumerate(leaves[first : first + store.BATCH])]
            async with db.write():  # as the append writes its rows: 200 a statement
                for at in range(0, len(batch), 200):
                    await db.execute(baseline.insert().values(batch[at : at + 200]))
        baseline_s = time.perf_counter() - started

        checkpoint = await store.latest(db)
        assert checkpoint is not None and checkpoint.size == entries, checkpoint
        rng = random.Random(7)
        inclusion_sizes, inclusion_times = [], []
        for index in rng.sample(range(entries), 200):
            t = time.perf_counter()
            proof = await store.inclusion_proof(db, index, entries)
            inclusion_times.append(time.perf_counter() - t)
            inclusion_sizes.append(len(proof))
        consistency_sizes, consistency_times = [], []
        for first in rng.sample(range(1, entries), 200):
            t = time.perf_counter()
            proof = await store.consistency_proof(db, first, entries)
            consistency_times.append(time.perf_counter() - t)
            consistency_sizes.append(len(proof))
        backend = "SQLite" if db.is_sqlite else "PostgreSQL"
        print(f"\n{backend}, {entries:,} entries ({entries // 50:,} anonymous)")
        print(f"  note (heads + queued leaves):  {note_s:6.2f} s   {1e6 * note_s / entries:6.0f} µs per entry")
        print(f"  append (hash, nodes, signed):  {append_s:6.2f} s   {1e6 * append_s / entries:6.0f} µs per entry")
        print(f"  baseline (the leaves as rows): {baseline_s:6.2f} s   append / baseline {append_s / baseline_s:.2f}")
        print(
            f"  inclusion proof: {max(inclusion_sizes)} hashes at most ({32 * max(inclusion_sizes)} bytes), "
            f"mean {1e3 * statistics.mean(inclusion_times):.2f} ms"
        )
        print(
            f"  consistency proof: {max(consistency_sizes)} hashes at most ({32 * max(consistency_sizes)} bytes), "
            f"mean {1e3 * statistics.mean(consistency_times):.2f} ms"
        )
    finally:
        await db.disconnect()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres", default=os.environ.get("PETITION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="petition-log-bench-") as tmp:
            asyncio.run(measure(f"sqlite:///{Path(tmp) / 'log.db'}", args.entries))
    if args.backend in ("postgresql", "both"):
        name = f"petition_log_{uuid.uuid4().hex[:8]}"
        asyncio.run(admin(args.postgres, f'CREATE DATABASE "{name}"'))
        try:
            asyncio.run(measure(with_database(args.postgres, name), args.entries))
        finally:
            asyncio.run(admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
