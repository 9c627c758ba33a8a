"""The server stack: `petition serve` on h11 + asyncio (the pure-Python parser and loop it ran
until issue 15) against httptools + uvloop (uvicorn[standard], its default now), in one run.

    .venv/bin/python bench/server_stack.py [--postgres URL] [--seconds 10] [--connections 50] [--rounds 2]

One fresh PostgreSQL database, one `petition serve` process at a time (no worker, PROXY_IPS=127.0.0.1
so each request's X-Forwarded-For counts as its own visitor under the default rate limits). For
each stack, in alternating rounds (old, new, old, new, … so that drift of the shared machine
hits both alike), wrk -t2 measures:

- the appeal page (GET, no cookie: each request a new visitor, who gets a CSRF cookie);
- the sign path (POST /appeals/<slug>/endorse, every request a new address).

wrk's Lua tallies every response's status; the sign path must answer every completed request
303 and the database must hold at least as many new pending endorsements (a request sent when
wrk stopped may be stored without being counted) — otherwise the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_bench import PETITION, ROOT, SLUG, admin, form, free_port, wait_http, with_database  # noqa: E402

STACKS = {"h11 + asyncio": ("h11", "asyncio"), "httptools + uvloop": ("httptools", "uvloop")}

# Numbers the threads (setup), gives each request its own address and visitor address, and tallies
# statuses per thread; done() prints them (wrk prints Lua errors only on stderr: checked below).
LUA = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  statuses = {}
  counter = 0
end
request = function()
  counter = counter + 1
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["X-Forwarded-For"] = "10." .. tid .. "." .. (math.floor(counter / 256) % 256) .. "." .. (counter % 256)
  if BODY == nil then
    return wrk.format("GET", nil, headers, nil)
  end
  local email = PREFIX .. tid .. "-" .. counter .. "%40stack" .. (counter % 5000) .. ".example"
  return wrk.format("POST", nil, headers, BODY .. "&contact_email=" .. email)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      io.write(string.format("STATUS %d %d\\n", status, n))
    end
  end
end
"""


def wrk(url: str, script: Path, seconds: int, connections: int) -> tuple[float, float, dict[int, int]]:
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    if done.stderr.strip():
        raise SystemExit(f"wrk {url}: {done.stderr.strip()}")
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99_raw = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99_raw, out
    p99 = float(p99_raw.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_raw.group(2)]
    statuses: dict[int, int] = {}
    for status, n in re.findall(r"^STATUS (\d+) (\d+)$", out, re.M):
        statuses[int(status)] = statuses.get(int(status), 0) + int(n)
    if re.search(r"Socket errors:.*", out):
        print(f"  wrk {url}: {re.search(r'Socket errors:.*', out).group(0)}")  # type: ignore[union-attr]
    return rps, p99, statuses


def script(tmp: Path, name: str, *, cookie: str, body: str | None = None, prefix: str = "") -> Path:
    path = tmp / f"{name}.lua"
    head = [f'wrk.headers["Cookie"] = "{cookie}"'] if cookie else []
    if body is not None:
        head += [
            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"',
            f'BODY = "{body}"',
            f'PREFIX = "{prefix}"',
        ]
    path.write_text("\n".join(head) + LUA)
    return path


async def pending_with(url: str, prefix: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM endorsements WHERE email_canonical LIKE $1 AND state = 'pending' "
                "AND hold_reason IS NULL",
                prefix + "%",
            )
        )
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres", default=os.environ.get("PETITION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--seconds", type=int, default=10, help="wrk run per measurement (default 10)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per stack (default 2)")
    args = parser.parse_args()

    name = f"petition_stack_{os.getpid()}"
    database_url = with_database(args.postgres, name)
    asyncio.run(admin(args.postgres, f'CREATE DATABASE "{name}"'))
    tmp = Path(tempfile.mkdtemp(prefix="petition-stack-"))
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "SIGNING_P12": "self-signed",
        "DATA_DIR": str(tmp),
        "RUN_WORKER": "false",
        "PROXY_IPS": "127.0.0.1",
        "PYTHONPATH": str(ROOT),  # this checkout's petition
    }
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    failures: list[str] = []
    try:
        subprocess.run([*PETITION, "db", "upgrade"], env=env, cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        for round_ in range(args.rounds):
            for label, (http, loop) in STACKS.items():
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                log = (tmp / f"serve-{http}-{round_}.log").open("wb")
                server = subprocess.Popen(
                    [*PETITION, "serve", "--port", str(port), "--http", http, "--loop", loop],
                    env={**env, "BASE_URL": base},
                    cwd=tmp,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                try:
                    wait_http(base + "/healthz")
                    with httpx2.Client(base_url=base) as client:
                        page = client.get(f"/appeals/{SLUG}")
                        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
                        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
                    fields = form("x", csrf)
                    fields.pop("contact_email")
                    page_rps, page_p99, page_statuses = wrk(
                        f"{base}/appeals/{SLUG}", script(tmp, "page", cookie=""), args.seconds, args.connections
                    )
                    prefix = f"r{round_}{http}"
                    sign_script = script(tmp, "sign", cookie=cookie, body=urlencode(fields), prefix=prefix)
                    sign_rps, sign_p99, sign_statuses = wrk(
                        f"{base}/appeals/{SLUG}/endorse", sign_script, args.seconds, args.connections
                    )
                finally:
                    server.send_signal(signal.SIGTERM)
                    server.wait(30)
                stored = asyncio.run(pending_with(database_url, prefix))
                answered = sign_statuses.get(303, 0)
                print(
                    f"round {round_ + 1} {label:20s} appeal page {page_rps:8.1f} req/s p99 {page_p99:6.1f} ms"
                    f"  | sign path {sign_rps:7.1f} req/s p99 {sign_p99:6.1f} ms, 303: {answered}, stored: {stored}",
                    flush=True,
                )
                if set(page_statuses) != {200}:
                    failures.append(f"{label}: appeal page answered {page_statuses}")
                if set(sign_statuses) != {303} or stored < answered:
                    failures.append(f"{label}: sign path answered {sign_statuses}, {stored} stored pending")
                results.setdefault((label, "page"), []).append((page_rps, page_p99))
                results.setdefault((label, "sign"), []).append((sign_rps, sign_p99))
    finally:
        asyncio.run(admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    print(f"\nmean of {args.rounds} rounds, wrk -t2 -c{args.connections} -d{args.seconds}s:")
    old, new = STACKS
    for path, title in (("page", "appeal page"), ("sign", "sign path")):
        before = statistics.mean(r for r, _ in results[(old, path)])
        after = statistics.mean(r for r, _ in results[(new, path)])
        p99_before = statistics.mean(p for _, p in results[(old, path)])
        p99_after = statistics.mean(p for _, p in results[(new, path)])
        print(
            f"  {title:12s} {old}: {before:8.1f} req/s p99 {p99_before:6.1f} ms   "
            f"{new}: {after:8.1f} req/s p99 {p99_after:6.1f} ms   ratio {after / before:.2f}"
        )
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
