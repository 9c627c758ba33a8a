"""The embedded default's sign path (SQLite) against the PostgreSQL sign path, measured in the same run.

    flock /work/bench.lock .venv/bin/python bench/sqlite_bench.py               # 20 s per server
    flock /work/bench.lock .venv/bin/python bench/sqlite_bench.py --seconds 10 --rounds 2

Each round starts `petition serve` (one process, no in-process worker) on a fresh PostgreSQL
database and measures POST /appeals/<slug>/endorse with wrk -t2 -cCONNECTIONS, then does the
same on a fresh SQLite file (the embedded default: DATABASE_URL unset, the file in DATA_DIR).
Every request carries a new address and its own X-Forwarded-For (trusted through
PROXY_IPS=127.0.0.1), so the default rate limits hold none back. The wrk script tallies the
answers by status (bench/load_bench.py's WRK_SCRIPT); after each server stops, the rows are
counted: every completed request must have been answered 303, and stored as one pending
endorsement (no hold reason) with its one confirmation email. Rows may exceed the completed
requests by at most CONNECTIONS: requests under way when wrk stopped are stored but not counted.

Targets (issue 15): SQLite ≥ 0.5 of PostgreSQL in requests/s, SQLite p99 ≤ 100 ms.
--profile FILE records the SQLite server with py-spy during the last round's run (an svg flame
graph; speedscope for a .json name, collapsed stacks for a .txt name).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from load_bench import PETITION, ROOT, SLUG, WrkRun, admin, free_port, sign_script, wait_http, with_database, wrk

#: What each stored row is counted by: (state, hold_reason) → rows, and emails queued.
Stored = tuple[dict[tuple[str, str | None], int], int]

COUNT_ENDORSEMENTS = "SELECT state, hold_reason, count(*) FROM endorsements GROUP BY state, hold_reason"
COUNT_OUTBOX = "SELECT count(*) FROM outbox WHERE kind = 'confirm'"


@dataclass
class Result:
    backend: str
    run: WrkRun
    stored: Stored

    def problems(self, connections: int) -> list[str]:
        by_state, emails = self.stored
        rows = sum(by_state.values())
        found = []
        if not self.run.all_answered(303):
            found.append(f"answers {self.run.statuses} of {self.run.completed} completed (all must be 303)")
        if set(by_state) - {("pending", None)}:
            found.append(f"stored {by_state}: every row must be pending and held by no limit")
        if not self.run.completed <= rows <= self.run.completed + connections:
            found.append(f"{rows} rows stored for {self.run.completed} answered (at most {connections} more)")
        if emails != rows:
            found.append(f"{emails} confirmation emails queued for {rows} endorsements")
        return found


@contextmanager
def serving(env: dict[str, str], tmp: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**env, "BASE_URL": f"http://127.0.0.1:{port}"}
    subprocess.run([*PETITION, "db", "upgrade"], env=env, cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    with (tmp / "serve.log").open("ab") as log:
        server = subprocess.Popen([*PETITION, "serve", "--port", str(port)], env=env, cwd=tmp, stdout=log, stderr=log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz")
        yield base, server
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def measure(
    backend: str, env: dict[str, str], tmp: Path, args: argparse.Namespace, count: Callable[[], Stored], profile: bool
) -> Result:
    with serving(env, tmp) as (base, server):
        script = sign_script(base, tmp)
        spy = None
        if profile:
            record = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(server.pid)]
            record += ["--gil"] if os.environ.get("PYSPY_GIL") else []
            fmt = {".json": ["--format", "speedscope"], ".txt": ["--format", "raw"]}.get(Path(args.profile).suffix, [])
            spy = subprocess.Popen([*record, *fmt, "--duration", str(args.seconds), "--output", args.profile])
        run = wrk(f"{base}/appeals/{SLUG}/endorse", script, args.seconds, args.connections)
        if spy is not None:
            spy.wait(60)
    return Result(backend, run, count())


def postgres_round(args: argparse.Namespace, base_env: dict[str, str]) -> Result:
    name = f"petition_sqlite_bench_{os.getpid()}"
    url = with_database(args.postgres, name)
    asyncio.run(admin(args.postgres, f'CREATE DATABASE "{name}"'))

    def count() -> Stored:
        async def go() -> Stored:
            conn = await asyncpg.connect(url)
            try:
                rows = await conn.fetch(COUNT_ENDORSEMENTS)
                return {(r[0], r[1]): int(r[2]) for r in rows}, int(await conn.fetchval(COUNT_OUTBOX))
            finally:
                await conn.close()

        return asyncio.run(go())

    try:
        with tempfile.TemporaryDirectory(prefix="petition-bench-pg-") as tmp:
            env = {**base_env, "DATABASE_URL": url, "DATA_DIR": tmp}
            return measure("postgresql", env, Path(tmp), args, count, profile=False)
    finally:
        asyncio.run(admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def sqlite_round(args: argparse.Namespace, base_env: dict[str, str], *, profile: bool) -> Result:
    with tempfile.TemporaryDirectory(prefix="petition-bench-sqlite-") as tmp:
        env = {key: value for key, value in base_env.items() if key != "DATABASE_URL"}
        env["DATA_DIR"] = tmp

        def count() -> Stored:
            with sqlite3.connect(Path(tmp) / "petition.db") as conn:
                rows = conn.execute(COUNT_ENDORSEMENTS).fetchall()
                return {(r[0], r[1]): int(r[2]) for r in rows}, int(conn.execute(COUNT_OUTBOX).fetchone()[0])

        return measure("sqlite", env, Path(tmp), args, count, profile=profile)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres", default=os.environ.get("PETITION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--seconds", type=int, default=20, help="wrk run per server and round (default 20)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1, help="PostgreSQL then SQLite, this many times (default 1)")
    parser.add_argument("--profile", help="py-spy record the SQLite server of the last round into this file")
    args = parser.parse_args()

    base_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SECRET_KEY": "bench-secret-key-" + uuid.uuid4().hex,
        "SIGNING_P12": "self-signed",
        "RUN_WORKER": "false",  # the sign path alone, on both backends
        "PROXY_IPS": "127.0.0.1",
    }
    print(
        "== sign path: PostgreSQL vs SQLite (synchronous=FULL), "
        f"wrk -t2 -c{args.connections} -d{args.seconds}s, {args.rounds} round(s)",
        flush=True,
    )
    results: list[Result] = []
    for i in range(args.rounds):
        results.append(postgres_round(args, base_env))
        results.append(sqlite_round(args, base_env, profile=bool(args.profile) and i == args.rounds - 1))
        for result in results[-2:]:
            rows = sum(result.stored[0].values())
            print(
                f"round {i + 1} {result.backend:10} {result.run.rps:8.1f} req/s  p99 {result.run.p99_ms:7.1f} ms  "
                f"answered {result.run.statuses} of {result.run.completed}  stored {rows} "
                f"{dict((f'{s}/{h}', n) for (s, h), n in result.stored[0].items())}  emails {result.stored[1]}",
                flush=True,
            )
    failed = False
    for result in results:
        for problem in result.problems(args.connections):
            print(f"FAIL {result.backend}: {problem}")
            failed = True
    pg = [r for r in results if r.backend == "postgresql"]
    lite = [r for r in results if r.backend == "sqlite"]
    pg_rps = sum(r.run.rps for r in pg) / len(pg)
    lite_rps = sum(r.run.rps for r in lite) / len(lite)
    lite_p99 = max(r.run.p99_ms for r in lite)
    ratio = lite_rps / pg_rps if pg_rps else 0.0
    print(f"postgresql sign path:    {pg_rps:8.1f} req/s  p99 {max(r.run.p99_ms for r in pg):7.1f} ms (worst round)")
    print(f"sqlite sign path:        {lite_rps:8.1f} req/s  p99 {lite_p99:7.1f} ms (worst round)")
    print(f"sqlite / postgresql:     {ratio:.2f} (target >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'})")
    print(f"sqlite p99:              {lite_p99:.1f} ms (target <= 100 ms: {'met' if lite_p99 <= 100 else 'NOT met'})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
