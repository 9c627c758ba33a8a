"""Load and delivery: endorsements at a steady rate while the mail relay goes away, then the sign
path's throughput against a bare endpoint, measured in the same run.

    .venv/bin/python bench/load_bench.py                       # the issue's 5 minutes
    .venv/bin/python bench/load_bench.py --duration 60 --throughput-seconds 10   # a quick look
    # before/after: git worktree add /tmp/old <commit>; add --skip-delivery --app-dir /tmp/old

Phase 1 submits RATE endorsements per minute for DURATION seconds to `petition serve` (one
process) with two `petition worker` processes on a fresh PostgreSQL database, while the SMTP
server (aiosmtpd, in this process) is stopped for the middle three fifths. It then waits for
the outbox to drain and prints what was accepted, stored and delivered (counted at the SMTP
server by Message-ID), duplicates and losses (both must be 0).

Phase 2 measures requests/s and p99 with wrk at CONNECTIONS connections for the sign path
(POST /appeals/<slug>/endorse: CSRF, validation, rate limits, the pending row and its outbox
email in one transaction) and for bench/bare_endpoint.py (the same form parsed, one row inserted
with asyncpg), and prints the ratio (target: at least 1.0, p99 at most 50 ms). Workers are
stopped during phase 2 so both servers get the same CPU. A Lua `response()` tallies every
answer's status in each wrk thread; the script checks that every request wrk completed was
answered 303 and stored (pending, not held), and prints the counts. `--floor` measures a third
server the same way, bench/floor_endpoint.py: petition's own stack answering 303 after the CSRF
check and nothing else, which parts what the stack costs from what the endorsement does.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import asyncpg
import httpx2
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
#: `petition` from this checkout (the venv's own script may import another worktree's package).
PETITION = [sys.executable, "-m", "petition.cli"]
SLUG = "protect-deserters"
SECRET = "bench-secret-key-" + uuid.uuid4().hex


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Counter:
    """aiosmtpd handler counting deliveries by Message-ID and recipient."""

    def __init__(self) -> None:
        self.by_id: collections.Counter[str] = collections.Counter()
        self.recipients: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001
        match = re.search(rb"^Message-ID:\s*(\S+)", envelope.content, re.M | re.I)
        with self.lock:
            self.by_id[match.group(1).decode() if match else uuid.uuid4().hex] += 1
            for rcpt in envelope.rcpt_tos:
                self.recipients[rcpt.lower()] += 1
        return "250 OK"


class Relay:
    def __init__(self, handler: Counter) -> None:
        self.handler = handler
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None


def with_database(url: str, name: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, ""))


async def admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def form(email: str, csrf: str) -> dict[str, str]:
    return {
        "organisation_name": "Load Test Organisation",
        "country": "DE",
        "city": "Berlin",
        "organisation_type": "peace",
        "website": "https://load.example",
        "contact_name": "Bench Person",
        "contact_role": "Tester",
        "contact_email": email,
        "authorised": "yes",
        "consent": "yes",
        "visibility": "public",
        "comment": "",
        "csrf_token": csrf,
    }


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx2.get(url, timeout=2).status_code < 500:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


async def submit_steadily(
    base: str, rate_per_min: int, duration: float, relay: Relay, down: tuple[float, float], connections: int
) -> tuple[int, int, list[str]]:
    accepted = failed = 0
    emails: list[str] = []
    limits = httpx2.Limits(max_connections=connections)
    async with httpx2.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        page = await client.get(f"/appeals/{SLUG}")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        interval = 60.0 / rate_per_min
        total = int(duration / interval)
        start = time.monotonic()
        smtp_state = "up"
        tasks = []
        gate = asyncio.Semaphore(connections)

        async def one(i: int) -> None:
            nonlocal accepted, failed
            email = f"contact{i}@org{i % 997}.bench.example"
            async with gate:
                try:
                    r = await client.post(
                        f"/appeals/{SLUG}/endorse",
                        data=form(email, csrf),
                        headers={"X-Forwarded-For": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"},
                    )
                except httpx2.HTTPError:
                    failed += 1
                    return
            if r.status_code == 303:
                accepted += 1
                emails.append(email)
            else:
                failed += 1

        for i in range(total):
            due = start + i * interval
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            elapsed = time.monotonic() - start
            if smtp_state == "up" and down[0] <= elapsed < down[1]:
                await asyncio.to_thread(relay.stop)
                smtp_state = "down"
                print(f"  t={elapsed:5.0f}s SMTP server stopped", flush=True)
            elif smtp_state == "down" and elapsed >= down[1]:
                await asyncio.to_thread(relay.start)
                smtp_state = "up"
                print(f"  t={elapsed:5.0f}s SMTP server started again", flush=True)
            if i and i % max(1, rate_per_min) == 0:
                print(f"  t={elapsed:5.0f}s {i} submitted", flush=True)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        if smtp_state == "down":
            relay.start()
    return accepted, failed, emails


@dataclass
class WrkRun:
    """What one wrk run measured, and what its Lua script counted of the answers."""

    rps: float
    p99_ms: float
    completed: int  # requests wrk saw answered
    statuses: dict[int, int]  # answers by HTTP status, tallied by the script's response()
    socket_errors: str | None  # wrk's line, when it had any (connect, read, write, timeout)

    def all_answered(self, status: int) -> bool:
        """Every request wrk completed got `status`, and the script saw each of them."""
        return self.completed > 0 and self.statuses == {status: self.completed}


_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) the process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def wrk(url: str, script: Path, seconds: int, connections: int) -> WrkRun:
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    out = done.stdout
    # A script that fails to load still runs, sending plain GETs (see STYLE.md): stop at any Lua error.
    if done.stderr.strip():
        raise SystemExit(f"wrk {url}: {done.stderr.strip()}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99_raw = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99_raw, out
    p99 = float(p99_raw.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_raw.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if non2xx:
        # Refused requests are fast: a run with any would overstate the throughput.
        raise SystemExit(f"wrk {url}: {non2xx.group(0)}")
    if errors:
        print(f"  wrk {url}: {errors.group(0)}")
    completed = re.search(r"^completed (\d+)$", out, re.M)
    if completed is None:
        raise SystemExit(f"wrk {url}: the script's done() did not report (is it the script from WRK_SCRIPT?)\n{out}")
    statuses = {int(code): int(n) for code, n in re.findall(r"^status (\d+) (\d+)$", out, re.M)}
    return WrkRun(rps, p99, int(completed.group(1)), statuses, errors.group(0) if errors else None)


# Each wrk thread runs its own Lua state with the same unseeded random numbers: `setup` numbers
# the threads, so no two threads send the same address (a repeat would take the known-address
# path) and each request comes from an X-Forwarded-For of its own (10.<thread, high bits of the
# counter>.<counter>: 2 million per thread before one repeats), so the default per-IP limits
# hold none back. `response` tallies the answers by status in each thread; `done` adds them up
# (through thread:get) and prints them with wrk's own count of completed requests.
WRK_SCRIPT = """
local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
local counter = 0
statuses = {{}}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "{cookie}"
request = function()
  counter = counter + 1
  local email = "{prefix}" .. tid .. "-" .. counter .. "%40wrk" .. (counter % 5000) .. ".example"
  local body = "{body}" .. "&contact_email=" .. email
  local headers = {{}}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  local high = (tid * 32 + math.floor(counter / 65536)) % 256
  headers["X-Forwarded-For"] = "10." .. high .. "." .. (math.floor(counter / 256) % 256) .. "." .. (counter % 256)
  return wrk.format(nil, nil, headers, body)
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  local tally = {{}}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do tally[code] = (tally[code] or 0) + n end
  end
  for code, n in pairs(tally) do io.write(string.format("status %d %d\\n", code, n)) end
  io.write(string.format("completed %d\\n", summary.requests))
end
"""


def sign_script(client_base: str, tmp: Path, prefix: str = "sign") -> Path:
    """A wrk script for the sign path of the server at `client_base`: its CSRF cookie and token,
    the bench form, a new address and client address per request (WRK_SCRIPT)."""
    with httpx2.Client(base_url=client_base) as client:
        page = client.get(f"/appeals/{SLUG}")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    fields = form("x", csrf)
    fields.pop("contact_email")
    script = tmp / f"{prefix}.lua"
    script.write_text(WRK_SCRIPT.format(prefix=prefix, cookie=cookie, body=urlencode(fields)))
    return script


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres", default=os.environ.get("PETITION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--rate", type=int, default=2000, help="endorsements per minute (default 2000)")
    parser.add_argument("--duration", type=float, default=300, help="seconds of load (default 300)")
    parser.add_argument("--workers", type=int, default=2, help="petition worker processes (default 2)")
    parser.add_argument("--py-spy", help="record the sign path server with py-spy (raw stacks) into this file")
    parser.add_argument("--throughput-seconds", type=int, default=20, help="wrk run per server (default 20)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument("--skip-delivery", action="store_true", help="only the throughput phase")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure the sign path's floor: petition's stack answering 303 after the CSRF check, "
        "nothing else (bench/floor_endpoint.py)",
    )
    parser.add_argument(
        "--app-dir",
        default=str(ROOT),
        help="the checkout whose petition is served (default: this one; the bare endpoint is always this one's)",
    )
    args = parser.parse_args()

    name = f"petition_bench_{os.getpid()}"
    database_url = with_database(args.postgres, name)
    asyncio.run(admin(args.postgres, f'CREATE DATABASE "{name}"'))
    processes: list[subprocess.Popen[bytes]] = []
    counter = Counter()
    relay = Relay(counter)
    relay.start()
    tmp = Path(tempfile.mkdtemp(prefix="petition-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET,
        "SIGNING_P12": "self-signed",  # one host: required with PostgreSQL
        "BASE_URL": f"http://127.0.0.1:{port}",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(relay.port),
        "DATA_DIR": str(tmp),
        "RUN_WORKER": "false",
        "OUTBOX_MAX_BACKOFF": "20",
        "WORKER_POLL_INTERVAL": "0.5",
        "SMTP_TIMEOUT": "5",
        "PROXY_IPS": "127.0.0.1",
        # The checkout asked for (this one by default), not whatever `petition` the virtualenv points at.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(args.app_dir).resolve()), os.environ.get("PYTHONPATH")])),
    }
    # The default rate limits apply: each submission comes from its own address (X-Forwarded-For,
    # trusted from loopback through PROXY_IPS), as from many people behind a reverse proxy.
    exit_code = 0
    try:
        subprocess.run([*PETITION, "db", "upgrade"], env=env, cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        log = (tmp / "serve.log").open("wb")
        command = [*PETITION, "serve", "--port", str(port)]
        processes.append(subprocess.Popen(command, env=env, cwd=tmp, stdout=log, stderr=log))
        workers = [
            subprocess.Popen(
                [*PETITION, "worker"],
                env=env,
                cwd=tmp,
                stdout=(tmp / f"worker{i}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            for i in range(args.workers)
        ]
        processes += workers
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz")

        down = (args.duration / 5, args.duration * 4 / 5)
        print(
            f"== Phase 1: {args.rate}/min for {args.duration:.0f} s; SMTP down from {down[0]:.0f} s "
            f"to {down[1]:.0f} s; {args.workers} workers",
            flush=True,
        )
        started = time.monotonic()
        accepted, failed, emails = (
            (0, 0, [])
            if args.skip_delivery
            else asyncio.run(submit_steadily(base, args.rate, args.duration, relay, down, args.connections))
        )
        load_time = time.monotonic() - started

        async def db_counts() -> tuple[int, int, int]:
            conn = await asyncpg.connect(database_url)
            try:
                stored = await conn.fetchval("SELECT count(*) FROM endorsements")
                queued = await conn.fetchval("SELECT count(*) FROM outbox")
                open_ = await conn.fetchval("SELECT count(*) FROM outbox WHERE state IN ('queued','sending')")
                return int(stored), int(queued), int(open_)
            finally:
                await conn.close()

        drain_start = time.monotonic()
        while True:
            stored, queued, pending = asyncio.run(db_counts())
            if pending == 0 or time.monotonic() - drain_start > args.drain_timeout:
                break
            time.sleep(1)
        drain = time.monotonic() - drain_start
        time.sleep(1)
        with counter.lock:
            total_messages = sum(counter.by_id.values())
            unique = len(counter.by_id)
            got = {e.lower() for e in counter.recipients}
        duplicates = total_messages - unique
        lost = sum(1 for e in emails if e.lower() not in got)
        print(f"submissions sent:        {accepted + failed} in {load_time:.0f} s")
        print(f"submissions accepted:    {accepted} (failed: {failed})")
        print(f"endorsements stored:     {stored}")
        print(f"emails queued:           {queued}")
        print(f"emails delivered:        {unique} (drained {drain:.0f} s after the load ended)")
        print(f"duplicates delivered:    {duplicates}")
        print(f"lost:                    {lost}")
        if duplicates or lost or failed or stored != accepted:
            exit_code = 1

        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            process.wait(30)

        print(
            f"== Phase 2: sign path vs bare endpoint, wrk -c{args.connections} -d{args.throughput_seconds}s; "
            f"petition from {Path(args.app_dir).resolve()}",
            flush=True,
        )
        script = sign_script(base, tmp)
        bare_port = free_port()
        bare = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "bare_endpoint.py"), "--dsn", database_url, "--port", str(bare_port)],
            cwd=tmp,
        )
        processes.append(bare)
        bare_url = f"http://127.0.0.1:{bare_port}"
        wait_http(bare_url + "/")
        server = processes[0]

        def measured(url: str, pid: int, profile: str | None = None) -> tuple[WrkRun, float]:
            """The wrk run and the server's CPU per completed request, in µs (steadier than req/s
            on a shared machine: what the server would do on a core of its own)."""
            spy = None
            if profile:
                spy = subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "py-spy"),
                        "record",
                        "--pid",
                        str(pid),
                        "--rate",
                        "250",
                        "--format",
                        "raw",
                        "--output",
                        profile,
                        "--duration",
                        str(args.throughput_seconds),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            cpu = process_cpu(pid)
            run = wrk(url, script, args.throughput_seconds, args.connections)
            cpu = process_cpu(pid) - cpu
            if spy is not None:
                spy.wait(60)
            return run, 1e6 * cpu / max(run.completed, 1)

        bare_run, bare_cpu = measured(f"{bare_url}/appeals/{SLUG}/endorse", bare.pid)
        sign_run, sign_cpu = measured(f"{base}/appeals/{SLUG}/endorse", server.pid, args.py_spy)
        ratio = sign_run.rps / bare_run.rps if bare_run.rps else 0.0
        lines = [("bare endpoint:", bare_run, bare_cpu), ("sign path:", sign_run, sign_cpu)]
        if args.floor:
            # The same settings (the secret, so the sign path's CSRF cookie and token), its own port.
            floor_port = free_port()
            floor = subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "floor_endpoint.py"), "--port", str(floor_port)],
                env={**env, "BASE_URL": f"http://127.0.0.1:{floor_port}"},
                cwd=tmp,
            )
            processes.append(floor)
            floor_url = f"http://127.0.0.1:{floor_port}"
            wait_http(floor_url + "/healthz")
            floor_run, floor_cpu = measured(f"{floor_url}/appeals/{SLUG}/endorse", floor.pid)
            if not floor_run.all_answered(303):
                print(f"floor: not every request answered 303: {floor_run.statuses}")
                exit_code = 1
            lines.append(("floor (CSRF, 303):", floor_run, floor_cpu))
        for label, run, cpu in lines:
            print(f"{label:<24} {run.rps:8.1f} req/s  p99 {run.p99_ms:7.1f} ms  cpu {cpu:5.0f} µs/req")
        print(f"sign / bare, by CPU:     {bare_cpu / sign_cpu:.2f}")
        print(f"sign / bare:             {ratio:.2f} (target >= 1.0, p99 <= 50 ms)")
        if args.floor:
            print(f"floor / bare:            {floor_run.rps / bare_run.rps:.2f}, by CPU {bare_cpu / floor_cpu:.2f}")

        async def stored() -> tuple[int, dict[str, int]]:
            conn = await asyncpg.connect(database_url)
            try:
                bare_rows = await conn.fetchval(
                    "SELECT count(*) FROM bare_endorsements WHERE contact_email LIKE 'sign%'"
                )
                rows = await conn.fetch(
                    "SELECT state || coalesce(' held: ' || hold_reason, '') AS state, count(*) AS n "
                    "FROM endorsements WHERE email_canonical LIKE 'sign%' GROUP BY 1"
                )
                return int(bare_rows), {row["state"]: int(row["n"]) for row in rows}
            finally:
                await conn.close()

        bare_stored, sign_states = asyncio.run(stored())
        # Every request wrk completed must have been answered 303 and stored; a few more may be stored
        # (requests still in flight when wrk stopped, at most one per connection). A held submission
        # (over a rate limit) queues no email: it would flatter the sign path.
        for label, run, count in (
            ("bare", bare_run, bare_stored),
            ("sign", sign_run, sign_states.get("pending", 0)),
        ):
            ok = run.all_answered(303) and run.completed <= count <= run.completed + args.connections
            statuses = dict(sorted(run.statuses.items()))
            print(
                f"{label} answered / stored:   {run.completed} completed, statuses {statuses}, "
                f"{count} stored{'' if label == 'bare' else ' pending'}: {'ok' if ok else 'NOT ALL STORED'}"
            )
            if not ok:
                exit_code = 1
        print(f"sign path stored:        {sign_states}")
        if set(sign_states) != {"pending"}:
            exit_code = 1
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        relay.stop()
        asyncio.run(admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
