"""The sign path's CPU per submission inside the application, without an HTTP server.

    .venv/bin/python bench/sign_path_cpu.py [--requests 4000] [--app-dir DIR] [--profile OUT]
    .venv/bin/python bench/sign_path_cpu.py --count-instructions --requests 1000 [--app-dir DIR]
    .venv/bin/python bench/sign_path_cpu.py --requests 2000 --pages 2000 [--app-dir DIR]

Calls the ASGI application of `--app-dir` (default: this checkout) directly with POSTs to
/appeals/<slug>/endorse from 50 concurrent submitters, on a fresh PostgreSQL database (created
and dropped), and prints the process's CPU time per submission, the group statements' sizes and
latency, and checks that every submission was answered 303 and stored pending. CPU time per
submission is steadier than requests/s on a shared machine, so two checkouts can be compared
one after the other (docs/benchmarks.md, "Load and delivery"); wrk and bench/load_bench.py
measure the whole server. `--count-instructions` runs it under valgrind's callgrind and counts
the instructions the measured submissions take (the server's, not PostgreSQL's): the same count
to a tenth of a per cent from run to run, whatever else the machine does. `--pages N` then
measures N views each of the pages around the form (the appeal page, "check your email" with the
cookie the form's 303 sets, the counts JSON, the page the email's link opens) from 10 concurrent
clients: CPU per view.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load_bench import admin, with_database  # noqa: E402 - the bench helpers, not petition

SLUG = "protect-deserters"
CONCURRENCY = 50


async def measure(args: argparse.Namespace, url: str) -> int:  # noqa: PLR0915 - one measurement, in order
    from petition.app import create_app
    from petition.endorsements import intake
    from petition.migrations.runner import upgrade_async
    from petition.settings import load_settings

    settings = load_settings(
        None,
        database_url=url,
        secret_key="sign-path-cpu-" + uuid.uuid4().hex,
        signing_p12="self-signed",
        base_url="http://bench",
        data_dir=tempfile.mkdtemp(prefix="petition-cpu-"),
        run_worker=False,
    )
    await upgrade_async(url)
    app = create_app(settings)
    groups: list[tuple[int, float]] = []
    write = intake.Intake._run

    async def timed(self: intake.Intake, group: list[Any]) -> Any:
        started = time.perf_counter()
        try:
            return await write(self, group)
        finally:
            groups.append((len(group), time.perf_counter() - started))

    intake.Intake._run = timed  # type: ignore[method-assign]
    async with app.router.lifespan_context(app) as state:  # type: ignore[attr-defined]

        async def call(
            method: str, headers: list[tuple[bytes, bytes]], body: bytes, client: str, path: str | None = None
        ) -> list[Any]:
            sent: list[Any] = []
            read = False

            async def receive() -> dict[str, Any]:
                nonlocal read
                if not read:
                    read = True
                    return {"type": "http.request", "body": body, "more_body": False}
                await asyncio.sleep(3600)  # no disconnect while the response is written
                raise AssertionError

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            path = path or f"/appeals/{SLUG}" + ("/endorse" if method == "POST" else "")
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": method,
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"",
                "root_path": "",
                "headers": [(b"host", b"bench"), *headers],
                "client": (client, 1234),
                "server": ("bench", 80),
                "state": dict(state),
            }
            await app(scope, receive, send)
            return sent

        page = await call("GET", [], b"", "127.0.0.1")
        cookie = next(v for k, v in page[0]["headers"] if k == b"set-cookie").split(b";")[0]
        csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page[1]["body"]).group(1).decode()  # type: ignore[union-attr]
        fields = {
            "organisation_name": "Load Test Organisation",
            "country": "DE",
            "city": "Berlin",
            "organisation_type": "peace",
            "website": "https://load.example",
            "contact_name": "Bench Person",
            "contact_role": "Tester",
            "authorised": "yes",
            "consent": "yes",
            "visibility": "public",
            "comment": "",
            "csrf_token": csrf,
        }
        body = urlencode(fields)
        statuses: dict[int, int] = {}

        async def submitter(prefix: str, w: int, count: int) -> None:
            for i in range(count):
                data = f"{body}&contact_email={prefix}{w}-{i}%40org{w}x{i}.example".encode()
                headers = [
                    (b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", str(len(data)).encode()),
                    (b"cookie", cookie),
                ]
                # Each submission from its own address, under the default limits.
                sent = await call("POST", headers, data, f"10.{w}.{i // 256 % 256}.{i % 256}")
                statuses[sent[0]["status"]] = statuses.get(sent[0]["status"], 0) + 1

        await asyncio.gather(*(submitter("warm", 100 + w, 20) for w in range(CONCURRENCY)))
        groups.clear()
        statuses.clear()
        per = args.requests // CONCURRENCY
        profile = cProfile.Profile() if args.profile else None
        if args.instructions:
            # Blocking on purpose: nothing runs until callgrind counts.
            subprocess.run(["callgrind_control", "--instr=on", str(os.getpid())], check=True, capture_output=True)  # noqa: ASYNC221
        cpu, wall = time.process_time(), time.perf_counter()
        if profile:
            profile.enable()
        await asyncio.gather(*(submitter("cpu", w, per) for w in range(CONCURRENCY)))
        if profile:
            profile.disable()
            profile.dump_stats(args.profile)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if args.instructions:
            subprocess.run(["callgrind_control", "--instr=off", str(os.getpid())], check=True, capture_output=True)  # noqa: ASYNC221
        n = per * CONCURRENCY
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT state || coalesce(' held: ' || hold_reason, '') AS state, count(*) AS n "
                "FROM endorsements WHERE email_canonical LIKE 'cpu%' GROUP BY 1"
            )
        finally:
            await conn.close()
        stored = {row["state"]: int(row["n"]) for row in rows}
        sizes = [size for size, _ in groups]
        latency = sorted(seconds * 1000 for _, seconds in groups)
        print(f"petition from {args.app_dir}")
        print(f"submissions:             {n}, statuses {statuses}, stored {stored}")
        print(f"process CPU:             {1e6 * cpu / n:.0f} µs per submission (wall {1e6 * wall / n:.0f} µs)")
        print(
            f"group statements:        {len(groups)}, size mean {statistics.mean(sizes):.1f} max {max(sizes)}; "
            f"latency median {statistics.median(latency):.1f} ms, p90 {latency[int(len(latency) * 0.9)]:.1f} ms"
        )
        ok = statuses == {303: n} and stored == {"pending": n}
        if args.pages:
            ok = await measure_pages(call, cookie, body, args.pages, app=app, url=url) and ok
        return 0 if ok else 1


async def measure_pages(call: Any, cookie: bytes, body: str, views: int, *, app: Any, url: str) -> bool:
    """CPU a view of the pages around the form, from 10 concurrent clients: the appeal page, "check
    your email" with the cookie the form's 303 sets (where every signer lands next), the counts,
    and the page the email's link opens (before the signer confirms)."""
    from petition.tokens import Purpose

    data = f"{body}&contact_email=pages%40org.example".encode()
    headers = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(data)).encode()),
        (b"cookie", cookie),
    ]
    posted = await call("POST", headers, data, "10.250.0.1")
    sent = next(v for k, v in posted[0]["headers"] if k == b"set-cookie").split(b";")[0]
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT id, token_nonce FROM endorsements WHERE email_canonical = 'pages@org.example'"
        )
    finally:
        await conn.close()
    token = app.state.services.tokens.make(Purpose.CONFIRM, endorsement_id=row["id"], nonce=row["token_nonce"])
    ok = True
    for label, path, cookies in (
        ("appeal page", f"/appeals/{SLUG}", cookie),
        ("check your email", f"/appeals/{SLUG}/check-email", cookie + b"; " + sent),
        ("counts JSON", f"/api/appeals/{SLUG}", cookie),
        ("confirmation page", f"/confirm/{token}", cookie),
    ):
        statuses: dict[int, int] = {}

        async def view(path: str = path, cookies: bytes = cookies, statuses: dict[int, int] = statuses) -> None:
            answer = await call("GET", [(b"cookie", cookies)], b"", "10.251.0.1", path=path)
            statuses[answer[0]["status"]] = statuses.get(answer[0]["status"], 0) + 1

        for _ in range(50):
            await view()
        statuses.clear()
        cpu = time.process_time()
        for _ in range(views // 10):
            await asyncio.gather(*(view() for _ in range(10)))
        cpu = time.process_time() - cpu
        print(f"{label + ':':<24} {1e6 * cpu / (views // 10 * 10):.0f} µs of CPU a view, statuses {statuses}")
        ok = ok and set(statuses) == {200}
    return ok


def count_instructions(args: argparse.Namespace) -> int:
    """This script again under callgrind, counting only while the measured submissions run."""
    with tempfile.TemporaryDirectory(prefix="petition-cpu-") as work:
        out = Path(work) / "callgrind.out"
        again = [a for a in sys.argv[1:] if a != "--count-instructions"]
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
        run = subprocess.run(
            [*command, sys.executable, __file__, *again, "--instructions"], capture_output=True, text=True
        )
        print(run.stdout, end="")
        if run.returncode != 0:
            print(run.stderr[-4000:], file=sys.stderr)
            return run.returncode
        totals = next(int(line.split()[1]) for line in out.read_text().splitlines() if line.startswith("totals:"))
    n = args.requests // CONCURRENCY * CONCURRENCY
    print(f"instructions:            {totals / n / 1e6:.3f} million per submission (callgrind, {totals:,} in all)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres", default=os.environ.get("PETITION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--app-dir", default=str(ROOT), help="the checkout whose application is measured")
    parser.add_argument("--profile", help="write a cProfile of the measured submissions here")
    parser.add_argument(
        "--pages",
        type=int,
        default=0,
        metavar="N",
        help="then N views each of the appeal page, 'check your email' (with the form's cookie), the counts JSON "
        "and the confirmation link's page",
    )
    parser.add_argument(
        "--count-instructions",
        action="store_true",
        help="run under valgrind's callgrind and print the instructions per measured submission "
        "(repeatable to a tenth of a per cent on a busy machine; ~50x slower: use --requests 1000)",
    )
    parser.add_argument("--instructions", action="store_true", help=argparse.SUPPRESS)  # set under callgrind
    args = parser.parse_args()
    if args.count_instructions:
        return count_instructions(args)
    args.app_dir = str(Path(args.app_dir).resolve())
    sys.path.insert(0, args.app_dir)
    name = f"petition_cpu_{os.getpid()}"
    asyncio.run(admin(args.postgres, f'CREATE DATABASE "{name}"'))
    try:
        return uvloop.run(measure(args, with_database(args.postgres, name)))
    finally:
        asyncio.run(admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    sys.exit(main())
