"""Open-data exports at scale: the CSV of 100,000 endorsements in PostgreSQL, against /healthz idle.

    .venv/bin/python bench/export_bench.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
        [--endorsements 100000] [--downloads 3] [--probes 40] [--app-dir DIR]

It creates a fresh database on the server, migrates it, creates the demo appeal and bulk-loads
the endorsements with COPY (as bench/public_bench.py does: about a tenth anonymous, a few
pending or withdrawn), prints the query plans of the export's reads, and starts
`uvicorn petition.app:create_app` (one worker). Then, in this order, with the baseline taken
in the same run:

- /healthz idle: the baseline (median and max of `--probes` requests, one at a time);
- one CSV download (median of three, each checked row by row against the database);
- a revalidation of it (`If-None-Match` with its ETag: median of `--probes`);
- /healthz while `--downloads` CSV downloads run at once (a probe every 50 ms; two rounds);
- the first and the last page of the JSON list;

and prints each with its ratio to the idle /healthz, and the server's CPU time per download
and per revalidation (which a busy machine does not stretch as it does wall time). `--app-dir`
serves another checkout of the application (say, a `git worktree` of an older commit) from the
same database, for a before/after comparison. The database is dropped at the end (unless --keep).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench.public_bench import (  # noqa: E402
    SLUG,
    admin,
    free_port,
    load,
    start_server,
    stop_server,
    with_database,
)

CSV_PATH = f"/appeals/{SLUG}/endorsements.csv"
JSON_PATH = f"/api/appeals/{SLUG}/endorsements"


def get(url: str, headers: dict[str, str] | None = None) -> tuple[float, int, bytes, Message]:
    """(seconds until the whole body was read, status, body, headers) of one GET."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - our own server
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            body = response.read()
            status, answer = response.status, response.headers
    except urllib.error.HTTPError as error:  # 304 comes as an "error" from urllib
        body, status, answer = error.read(), error.code, error.headers
    return time.perf_counter() - started, status, body, answer


async def expected_csv_rows(url: str) -> list[list[str]]:
    """The named list straight from the database, newest first, as the CSV's cells (no formula prefixes
    in this data; the time without its "Z", which older versions left out on PostgreSQL)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT organisation_name, country, city, organisation_type, website, listed_at FROM endorsements "
            "WHERE appeal_id = (SELECT id FROM appeals WHERE slug = $1) AND visibility = 'public' "
            "AND state IN ('confirmed', 'approved') ORDER BY listed_at DESC, id DESC",
            SLUG,
        )
    finally:
        await conn.close()
    return [
        [
            r["organisation_name"],
            r["country"],
            r["city"],
            r["organisation_type"],
            r["website"],
            r["listed_at"].isoformat(),
        ]
        for r in rows
    ]


async def explain(url: str) -> None:
    """The plans of the export's reads, compiled from the application's own queries."""
    import asyncpg
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql

    from petition.endorsements.tables import endorsements as e
    from petition.publish.queries import STREAM_CHUNK, _named, _named_conditions, _newest_first

    conn = await asyncpg.connect(url)
    try:
        appeal = dict(await conn.fetchrow("SELECT * FROM appeals WHERE slug = $1", SLUG))
        middle = await conn.fetchrow(
            "SELECT listed_at, id FROM endorsements WHERE appeal_id = $1 AND listed_at IS NOT NULL "
            "ORDER BY listed_at DESC, id DESC OFFSET (SELECT count(*) / 2 FROM endorsements) LIMIT 1",
            appeal["id"],
        )
        newest = _newest_first(_named(appeal, country=None, organisation_type=None, search=None))
        at, below = middle["listed_at"], middle["id"]
        queries = {
            "list version (the ETag)": sa.select(
                sa.func.count(), sa.func.sum(e.c.id), sa.func.max(e.c.updated_at)
            ).where(*_named_conditions(appeal, country=None, organisation_type=None, search=None)),
            "first chunk": newest.limit(STREAM_CHUNK),
            "a chunk half-way down": newest.where(
                e.c.listed_at <= sa.literal(at), sa.or_(e.c.listed_at < sa.literal(at), e.c.id < below)
            ).limit(STREAM_CHUNK),
        }
        for label, query in queries.items():
            sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
            plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS OFF) " + sql)
            print(f"-- EXPLAIN {label}")
            for line in plan:
                print("   " + line[0])
    finally:
        await conn.close()


def summary(values: list[float]) -> tuple[float, float, float]:
    """(median, 95th percentile, max) in ms."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered) * 1000, p95 * 1000, ordered[-1] * 1000


def measure(url: str, args: argparse.Namespace) -> None:
    data_dir = tempfile.mkdtemp(prefix="petition-export-bench-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "SIGNING_P12": "self-signed",  # one host: required with PostgreSQL
        "BASE_URL": base,
        "DATA_DIR": data_dir,
        "RUN_WORKER": "false",
        "CREATE_DEMO": "false",
        # Every download still goes through the limit (one write each), but is never refused.
        "RATE_LIMIT_EXPORT": "100000",
    }
    expected = asyncio.run(expected_csv_rows(url))
    app_dir = Path(args.app_dir).resolve()
    server = start_server(
        ["petition.app:create_app", "--factory"], {**env, "PYTHONPATH": str(app_dir)}, port, cwd=app_dir
    )
    process = psutil.Process(server.pid)

    def cpu() -> float:
        """CPU seconds the server has used: unlike wall time, not stretched by a busy machine."""
        times = process.cpu_times()
        return float(times.user + times.system)

    try:
        for _ in range(20):  # warm-up: connections, compiled statements
            get(base + "/healthz")
        cpu_before = cpu()
        idle = [get(base + "/healthz")[0] for _ in range(args.probes)]
        cpu_healthz = (cpu() - cpu_before) / len(idle)

        downloads = []
        etag = ""
        cpu_before = cpu()
        for _ in range(3):
            seconds, status, body, headers = get(base + CSV_PATH)
            assert status == 200, status
            records = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
            cells = [[c[1:] if c.startswith("'") else c for c in r] for r in records[1:]]
            if [r[:-1] + [r[-1].removesuffix("Z")] for r in cells] != expected:
                raise SystemExit(
                    f"the CSV differs from the database: {len(records) - 1} rows, {len(expected)} expected"
                )
            downloads.append(seconds)
            etag = headers["ETag"]
        size = len(body)
        cpu_download = (cpu() - cpu_before) / 3

        revalidations = []
        cpu_before = cpu()
        for _ in range(args.probes):
            seconds, status, _body, _headers = get(base + CSV_PATH, {"If-None-Match": etag})
            assert status == 304, status
            revalidations.append(seconds)
        cpu_revalidation = (cpu() - cpu_before) / len(revalidations)

        busy: list[float] = []
        cpu_before = cpu()
        concurrent: list[float] = []
        for _round in range(2):
            done: list[float] = []

            def download() -> None:
                seconds, status, _b, _h = get(base + CSV_PATH)
                assert status == 200
                done.append(seconds)  # noqa: B023 - each round's own list

            threads = [threading.Thread(target=download) for _ in range(args.downloads)]
            for thread in threads:
                thread.start()
            time.sleep(0.05)
            while any(thread.is_alive() for thread in threads):
                busy.append(get(base + "/healthz")[0])
                time.sleep(0.05)
            for thread in threads:
                thread.join()
            concurrent += done
        cpu_concurrent = (cpu() - cpu_before - len(busy) * cpu_healthz) / len(concurrent)

        pages = -(-len(expected) // 100)
        first = [get(base + JSON_PATH)[0] for _ in range(5)]
        last = [get(base + f"{JSON_PATH}?page={pages}")[0] for _ in range(5)]
    finally:
        stop_server(server)

    idle_median = statistics.median(idle) * 1000
    print(
        f"\n{args.endorsements:,} endorsements ({len(expected):,} named in the CSV, {size / 1e6:.1f} MB); "
        f"uvicorn, one worker; app from {Path(args.app_dir).resolve()}\n"
    )
    print(f"| {'measured':<44} | {'median ms':>9} | {'p95 ms':>8} | {'max ms':>8} | {'median / idle healthz':>21} |")
    print(f"|{'-' * 46}|{'-' * 10}:|{'-' * 9}:|{'-' * 9}:|{'-' * 22}:|")

    def line(label: str, values: list[float]) -> None:
        median, p95, most = summary(values)
        print(f"| {label:<44} | {median:>9.1f} | {p95:>8.1f} | {most:>8.1f} | {median / idle_median:>21.1f} |")

    line(f"/healthz idle ({len(idle)} probes): the baseline", idle)
    line("one CSV download, alone (3 runs)", downloads)
    line(f"CSV revalidation, 304 ({len(revalidations)} runs)", revalidations)
    line(f"/healthz during {args.downloads} downloads ({len(busy)} probes)", busy)
    line(f"each of {args.downloads} concurrent downloads ({len(concurrent)})", concurrent)
    line("JSON page 1 (5 runs)", first)
    line(f"JSON page {pages}, the last (5 runs)", last)
    print(
        f"\nserver CPU per download: {cpu_download * 1000:.0f} ms alone, {cpu_concurrent * 1000:.0f} ms "
        f"with {args.downloads} at once; per revalidation: {cpu_revalidation * 1000:.2f} ms"
    )
    _m, _p, busy_max = summary(busy)
    print(
        f"\nrevalidation / download = {statistics.median(revalidations) / statistics.median(downloads):.4f}; "
        f"/healthz during {args.downloads} downloads: max {busy_max:.0f} ms = "
        f"{busy_max / idle_median:.1f} x the idle median"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres", default=os.environ.get("PETITION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--endorsements", type=int, default=100_000)
    parser.add_argument("--downloads", type=int, default=3, help="concurrent downloads while /healthz is probed")
    parser.add_argument("--probes", type=int, default=40, help="idle /healthz probes and revalidations")
    parser.add_argument("--app-dir", default=str(ROOT), help="the checkout of the application to serve")
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL is printed)")
    args = parser.parse_args()

    from petition.migrations.runner import upgrade

    name = f"petition_export_bench_{os.getpid()}"
    url = with_database(args.postgres, name)
    asyncio.run(admin(args.postgres, f'CREATE DATABASE "{name}"'))
    try:
        upgrade(url)
        asyncio.run(load(url, args.endorsements))
        asyncio.run(explain(url))
        measure(url, args)
    finally:
        if args.keep:
            print(f"kept {url}")
        else:
            asyncio.run(admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
