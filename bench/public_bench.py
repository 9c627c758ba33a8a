"""Public pages at scale: 100,000 endorsements in PostgreSQL, measured with wrk against a baseline.

    .venv/bin/python bench/public_bench.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
        [--endorsements 100000] [--duration 10] [--connections 32] [--workers 1]

It creates a fresh database on the server, migrates it, creates the demo appeal, bulk-loads
the endorsements with COPY (about a tenth anonymous, a few pending or withdrawn, so the
counts must filter), runs VACUUM ANALYZE and prints the query plans of the public reads.
Then it starts `uvicorn petition.app:create_app` and, beside it, a bare Starlette app
(bench/constant_app.py) serving the very bytes of the appeal page as a constant page, with
the same worker count and the same server stack (`--http`, `--loop`: httptools and uvloop,
what `petition serve` runs, unless told otherwise), and measures each URL with wrk:
requests/s and p99 latency, and the ratio to the constant page measured just before and
just after it in the same run. wrk sends no cookie, so every request of the pages is a new
visitor's (a CSRF secret and cookie each); the rows "returning visitor" send the CSRF cookie
a first visit got. Each row also gives the server's CPU time per request answered (user +
system time of its processes over the run, from /proc) and its ratio to the constant page's:
the steadier measure on a shared machine. The database is dropped at the end (unless --keep).
`--load-only` fills a database for a demo and exits; `--reuse` measures one it left.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SLUG = "protect-deserters"
TARGET_RATIO = 0.8
#: The pages the target is for (as new visitors: what this script has always measured).
TARGET_PAGES = ("appeal page", "signatory list")

# Countries with a skewed share, as real appeals have: a few large, many small.
COUNTRIES = [
    "DE",
    "FR",
    "IT",
    "ES",
    "NL",
    "BE",
    "AT",
    "CH",
    "PL",
    "CZ",
    "SE",
    "DK",
    "NO",
    "FI",
    "IE",
    "PT",
    "GR",
    "LT",
    "LV",
    "EE",
    "UA",
    "RU",
    "BY",
    "GE",
    "AM",
    "MD",
    "RO",
    "BG",
    "HU",
    "SK",
    "SI",
    "HR",
    "RS",
    "GB",
    "IS",
    "LU",
    "CY",
    "MT",
    "TR",
    "AL",
]
TYPES = [
    "ngo",
    "human_rights",
    "peace",
    "union",
    "religious",
    "refugee_support",
    "legal",
    "media",
    "political",
    "academic",
    "other",
]
WORDS = [
    "Peace",
    "Friends",
    "Solidarity",
    "Refuge",
    "Conscience",
    "Rights",
    "Union",
    "Network",
    "Women",
    "Youth",
    "Church",
    "Council",
    "Forum",
    "Alliance",
    "Mothers",
    "Initiative",
    "Lawyers",
    "Action",
]


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def endorsement_records(count: int, appeal_id: int, text_hash: str, seed: int = 7) -> list[tuple[object, ...]]:
    from petition.endorsements.vocabulary import normalise_name

    rng = random.Random(seed)
    weights = [1.0 / (i + 1) ** 0.9 for i in range(len(COUNTRIES))]
    start = dt.datetime(2026, 1, 10, 8, 0, 0)
    records = []
    for i in range(count):
        country = rng.choices(COUNTRIES, weights)[0]
        name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {country} {i}"
        roll = rng.random()
        state = "confirmed" if roll < 0.94 else ("pending" if roll < 0.98 else "withdrawn")
        created = start + dt.timedelta(seconds=i * 37)
        listed = created + dt.timedelta(minutes=5) if state == "confirmed" else None
        email = f"contact{i}@org{i}.example"
        records.append(
            (
                appeal_id,
                name,
                normalise_name(name),
                country,
                "",
                rng.choice(TYPES),
                f"https://org{i}.example",
                f"Contact {i}",
                "",
                email,
                email,
                True,
                "2026-11",
                "anonymous" if rng.random() < 0.1 else "public",
                "",
                "en",
                "en",
                text_hash,
                state,
                secrets.token_hex(16),
                created,
                created,
                listed,
                None,
                created if state == "withdrawn" else None,
                listed,
            )
        )
    return records


COLUMNS = [
    "appeal_id",
    "organisation_name",
    "name_normalised",
    "country",
    "city",
    "organisation_type",
    "website",
    "contact_name",
    "contact_role",
    "contact_email",
    "email_canonical",
    "authorised",
    "consent_version",
    "visibility",
    "comment",
    "language",
    "text_language",
    "text_hash",
    "state",
    "token_nonce",
    "created_at",
    "updated_at",
    "confirmed_at",
    "moderated_at",
    "withdrawn_at",
    "listed_at",
]


async def load(url: str, count: int) -> None:
    """The demo appeal and `count` endorsements, bulk-copied, then VACUUM ANALYZE."""
    import asyncpg

    from petition.appeals.queries import ensure_demo_appeal
    from petition.db import Database

    db = Database(url)
    await db.connect()
    try:
        await ensure_demo_appeal(db)
    finally:
        await db.disconnect()
    conn = await asyncpg.connect(url)
    try:
        appeal_id = await conn.fetchval("SELECT id FROM appeals WHERE slug = $1", SLUG)
        text_hash = await conn.fetchval("SELECT content_hash FROM appeal_texts WHERE appeal_id = $1 LIMIT 1", appeal_id)
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "endorsements", records=endorsement_records(count, appeal_id, text_hash), columns=COLUMNS
        )
        await conn.execute("VACUUM ANALYZE endorsements")
        print(f"loaded {count:,} endorsements in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        await conn.close()


async def explain(url: str) -> None:
    """The plans of the public reads, compiled from the application's own queries."""
    import asyncpg
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql

    from petition.endorsements.queries import listed_condition
    from petition.endorsements.tables import endorsements as e
    from petition.publish.queries import _named

    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("SELECT * FROM appeals WHERE slug = $1", SLUG)
        appeal = dict(row)
        queries = {
            "counts": sa.select(e.c.country, e.c.visibility, sa.func.count())
            .where(e.c.appeal_id == appeal["id"], listed_condition(appeal["moderation"]))
            .group_by(e.c.country, e.c.visibility),
            "newest named": _named(appeal, country=None, organisation_type=None, search=None)
            .where(e.c.listed_at.is_not(None))
            .order_by(e.c.listed_at.desc(), e.c.id.desc())
            .limit(10),
            "signatory list, page 20": _named(appeal, country=None, organisation_type=None, search=None)
            .order_by(e.c.country, e.c.name_normalised, e.c.id)
            .offset(950)
            .limit(50),
            "signatory list, one country": _named(appeal, country="FR", organisation_type=None, search=None)
            .order_by(e.c.country, e.c.name_normalised, e.c.id)
            .limit(50),
        }
        for label, query in queries.items():
            sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
            plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS OFF) " + sql)
            print(f"-- EXPLAIN {label}")
            for line in plan:
                print("   " + line[0])
    finally:
        await conn.close()


def start_server(
    args: list[str], env: dict[str, str], port: int, cwd: Path = ROOT, *, http: str = "httptools", loop: str = "uvloop"
) -> subprocess.Popen[bytes]:
    """uvicorn serving `args` from `cwd` (another checkout, to compare), once /healthz answers.

    The HTTP parser and the event loop are named, never uvicorn's "auto": both servers of a
    run must have the same, and a missing package must fail rather than fall back.
    """
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "uvicorn",
            *args,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--http",
            http,
            "--loop",
            loop,
        ],
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:  # noqa: S310
                if r.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    stop_server(process)
    raise SystemExit(f"server on port {port} did not start")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Run(NamedTuple):
    """One measured wrk run, and the server's CPU time per request answered during it."""

    rps: float
    p99: float
    errors: int
    cpu_us: float


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
_TICK = os.sysconf("SC_CLK_TCK")


def server_cpu(server: subprocess.Popen[bytes]) -> float:
    """Seconds of CPU (user + system) the server's processes have used: its session's, so that
    the workers of `--workers N` count too (start_server gives each server a session of its own)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # a process that ended meanwhile
        if int(fields[3]) == server.pid:  # the session id
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def wrk(
    url: str, duration: int, connections: int, threads: int, cookie: str | None = None, *, gzip: bool = False
) -> tuple[float, float, int, int]:
    """(requests/s, p99 in ms, non-2xx/3xx responses, requests answered) of one wrk run;
    `gzip`: as a browser asks, with `Accept-Encoding: gzip`."""
    headers = ["-H", f"Cookie: {cookie}"] if cookie else []
    if gzip:
        headers += ["-H", "Accept-Encoding: gzip, deflate, br"]
    out = subprocess.run(  # noqa: S603
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", *headers, url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rps, float(value) * _UNITS[unit], int(errors.group(1)) if errors else 0, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres", default=os.environ.get("PETITION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--endorsements", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured URL")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers, for the app and the baseline")
    parser.add_argument("--http", default="httptools", help="uvicorn --http of both servers (h11: the old stack)")
    parser.add_argument("--loop", default="uvloop", help="uvicorn --loop of both servers (asyncio: the old stack)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="run the whole sequence N times; each ratio is the median of its N"
    )
    parser.add_argument(
        "--gzip",
        action="store_true",
        help="every request asks for gzip, as browsers do; the constant pages are sent compressed once",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL is printed)")
    parser.add_argument(
        "--load-only", metavar="DBNAME", help="create DBNAME, load it, print its URL and exit (for demos)"
    )
    parser.add_argument(
        "--reuse", metavar="DBNAME", help="measure DBNAME as --load-only left it, and keep it (while developing)"
    )
    args = parser.parse_args()

    from petition.migrations.runner import upgrade

    if args.reuse:
        measure(with_database(args.postgres, args.reuse), args)
        return

    name = args.load_only or f"petition_bench_{os.getpid()}"
    url = with_database(args.postgres, name)
    asyncio.run(admin(args.postgres, f'CREATE DATABASE "{name}"'))
    try:
        upgrade(url)
        asyncio.run(load(url, args.endorsements))
        if args.load_only:
            print(url)
            return
        asyncio.run(explain(url))
        measure(url, args)
    finally:
        if not (args.keep or args.load_only):
            asyncio.run(admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        elif args.keep:
            print(f"kept {url}")


def measure(url: str, args: argparse.Namespace) -> None:
    """Both servers run side by side; the baseline is measured before and after each page.

    The machine is shared, so its speed drifts: each page is compared with the mean of
    the baseline runs on either side of it, not with one baseline from minutes before.
    With `--rounds N` the whole sequence runs N times and each ratio is the median of its N.

    Then the appeal page is measured once more against the constant page sent with the
    appeal page's own headers (`/with-headers` of bench/constant_app.py): the same bytes on
    the wire, so that ratio is what the application costs beside the server's work on them.
    """
    data_dir = tempfile.mkdtemp(prefix="petition-bench-")
    app_port, base_port = free_port(), free_port()
    base = f"http://127.0.0.1:{app_port}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "SIGNING_P12": "self-signed",  # one host: required with PostgreSQL
        "BASE_URL": base,
        "DATA_DIR": data_dir,
        "RUN_WORKER": "false",
        "PYTHONPATH": str(ROOT),
    }
    # (label, path, as a returning visitor)
    pages = [
        ("appeal page", f"/appeals/{SLUG}", False),
        ("signatory list", f"/appeals/{SLUG}/signatories", False),
        ("counts JSON", f"/api/appeals/{SLUG}", False),
        # Where every signer lands after the form (here without the cookie that names the address).
        ("check your email", f"/appeals/{SLUG}/check-email", False),
        ("appeal page, returning", f"/appeals/{SLUG}", True),
        ("signatory list, returning", f"/appeals/{SLUG}/signatories", True),
    ]
    stack = {"http": args.http, "loop": args.loop}
    app = start_server(["petition.app:create_app", "--factory", "--workers", str(args.workers)], env, app_port, **stack)
    baseline = None
    try:
        with urllib.request.urlopen(base + pages[0][1]) as response:  # noqa: S310
            page = response.read()
            # The CSRF cookie a first visit gets: a returning visitor sends it back.
            cookie = response.headers["set-cookie"].partition(";")[0]
            # The headers as the application sent them, but those the server adds to every
            # response (and Connection, which urllib asked for).
            headers = [
                (name, value)
                for name, value in response.headers.items()
                if name.lower() not in ("date", "server", "connection")
            ]
        page_file = Path(data_dir) / "constant.html"
        page_file.write_bytes(page)
        headers_file = Path(data_dir) / "headers.json"
        headers_file.write_text(json.dumps(headers))
        baseline = start_server(
            ["bench.constant_app:app", "--workers", str(args.workers)],
            {**env, "BENCH_PAGE_FILE": str(page_file), "BENCH_HEADERS_FILE": str(headers_file)},
            base_port,
            **stack,
        )
        # With --gzip, the constant pages are sent compressed, as a server sends a file it
        # compressed once (nginx's gzip_static): the same bytes a browser gets.
        suffix = "?gzip=1" if args.gzip else ""
        constant = f"http://127.0.0.1:{base_port}/{suffix}"
        constant_with_headers = f"http://127.0.0.1:{base_port}/with-headers{suffix}"

        def run(server: subprocess.Popen[bytes], target: str, cookie: str | None = None) -> Run:
            wrk(target, 2, args.connections, args.threads, cookie, gzip=args.gzip)  # warm-up
            before = server_cpu(server)
            rps, p99, errors, requests = wrk(
                target, args.duration, args.connections, args.threads, cookie, gzip=args.gzip
            )
            return Run(rps, p99, errors, (server_cpu(server) - before) / requests * 1e6)

        def compared(baselines: list[Run], measured: Run) -> tuple[Run, float, float]:
            around = baselines[-2:]
            return (
                measured,
                measured.rps / (sum(b.rps for b in around) / 2),
                (sum(b.cpu_us for b in around) / 2) / measured.cpu_us,
            )

        rounds: list[tuple[list[Run], dict[str, tuple[Run, float, float]]]] = []
        for _ in range(args.rounds):
            baselines = [run(baseline, constant)]
            results: dict[str, tuple[Run, float, float]] = {}
            for label, path, returning in pages:
                measured = run(app, base + path, cookie if returning else None)
                baselines.append(run(baseline, constant))
                results[label] = compared(baselines, measured)
            rounds.append((baselines, results))
        with_headers = [run(baseline, constant_with_headers)]
        measured = run(app, base + pages[0][1])
        with_headers.append(run(baseline, constant_with_headers))
        same_headers = compared(with_headers, measured)
    finally:
        stop_server(app)
        if baseline is not None:
            stop_server(baseline)

    print(
        f"\n{args.endorsements:,} endorsements; wrk -t{args.threads} -c{args.connections} -d{args.duration}s; "
        f"uvicorn --workers {args.workers} --http {args.http} --loop {args.loop}; "
        f"constant page = the appeal page's {len(page):,} bytes"
        f"{' (gzipped once; every request accepts gzip)' if args.gzip else ''}; {args.rounds} round(s)\n"
    )
    print(
        f"| {'page':<40} | {'requests/s':>10} | {'p99 ms':>8} | {'ratio to baseline':>17} | {'errors':>6} "
        f"| {'µs CPU/request':>14} | {'CPU ratio':>9} |"
    )
    print(f"|{'-' * 42}|{'-' * 11}:|{'-' * 9}:|{'-' * 18}:|{'-' * 7}:|{'-' * 15}:|{'-' * 10}:|")

    def row(label: str, r: Run, ratio: float = 1.0, cpu_ratio: float = 1.0) -> None:
        print(
            f"| {label:<40} | {r.rps:>10.0f} | {r.p99:>8.1f} | {ratio:>17.2f} | {r.errors:>6} "
            f"| {r.cpu_us:>14.0f} | {cpu_ratio:>9.2f} |"
        )

    for n, (baselines, results) in enumerate(rounds, 1):
        prefix = f"round {n}: " if args.rounds > 1 else ""
        for i, b in enumerate(baselines):
            row(f"{prefix}constant page, run {i + 1}", b)
        for label, (r, ratio, cpu_ratio) in results.items():
            row(prefix + label, r, ratio, cpu_ratio)
    for i, b in enumerate(with_headers):
        row(f"constant page with its headers, run {i + 1}", b)
    row("appeal page (against its headers)", *same_headers)
    print()
    for label in TARGET_PAGES:
        ratio = statistics.median(results[label][1] for _baselines, results in rounds)
        cpu_ratio = statistics.median(results[label][2] for _baselines, results in rounds)
        verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
        of = f"median of {args.rounds} rounds, " if args.rounds > 1 else ""
        print(
            f"{label} (new visitors) / constant page ({of}mean of the runs before and after) = {ratio:.2f}: "
            f"{verdict} the target of {TARGET_RATIO} (server CPU per request: {cpu_ratio:.2f})"
        )
    _r, ratio, cpu_ratio = same_headers
    print(
        f"appeal page (new visitors) / the constant page with the appeal page's headers = {ratio:.2f} "
        f"(server CPU per request: {cpu_ratio:.2f}): what the application costs beyond the server's "
        "work on the headers it sends"
    )


if __name__ == "__main__":
    main()
