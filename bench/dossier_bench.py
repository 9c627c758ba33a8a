"""Dossier rendering against a bare weasyprint render of the same rows, measured in one run.

    .venv/bin/python bench/dossier_bench.py [--sizes 1000,20000]
    .venv/bin/python bench/dossier_bench.py --sizes 100000      # the dossier alone

For each size: a temporary SQLite database gets that many named organisations
(synthetic names in Latin, Cyrillic, Greek, Georgian, Armenian, Arabic and Hebrew)
plus a few anonymous ones. Then, each in a fresh child process:

- dossier: `petition.dossiers.jobs.build` — gather, chunked render across the
  process pool, page marks and "page X of Y" laid over the joined pages, PAdES
  signature, stored file;
- bare: the same rows as one plain HTML table rendered by weasyprint in one go
  (only up to --bare-max rows: at 100,000 it would need ~10 GiB and most of an hour).

Time is wall-clock; CPU is the user and system time of the child and all its
descendants (each process's as last sampled), which a busy machine stretches less
than wall time. Peak
memory is the peak of the summed PSS (proportional set size: a page shared by n
processes counts 1/n in each, so forked pool processes are not counted twice) of the
child and all its descendants, the pool's processes included, sampled every 50 ms with
psutil; the line under it splits that peak by process (main: the child; forkserver;
pool: each pool process; tracker: multiprocessing's resource tracker).
RUSAGE_CHILDREN's largest single process RSS is printed as a cross-check.

Targets (issue 15): at the largest size with a bare render (20,000), dossier time and
peak memory <= 0.20 x bare; at 100,000, the dossier within 180 s and 1 GiB.
`DOSSIER_BENCH_LOG=1` prints the build's own log (time of each step).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = [
    ("Friedensinitiative", "Ärztinnen", "für", "Menschenrechte"),
    ("Союз", "защиты", "прав", "отказников"),
    ("Ένωση", "Αντιρρησιών", "Συνείδησης", "Αθήνας"),
    ("მშვიდობის", "კავშირი", "თბილისი", "ახალგაზრდები"),
    ("Խաղաղության", "Հայկական", "Ասոցիացիա", "Երևան"),
    ("جمعية", "الحرية", "العالمية", "للمعترضين"),
    ("ארגון", "שלום", "ישראלי", "לסרבנים"),
]
CITIES = ["Berlin", "Offenbach", "Köln", "München", "Hamburg", "Leipzig"]


def synthetic_name(i: int) -> str:
    words = WORDS[i % len(WORDS)]
    return f"{words[i % 4]} {words[(i // 7) % 4]} {words[(i // 29) % 4]} {i}"


async def seed(url: str, count: int) -> None:
    from petition.appeals.queries import DEMO_SLUG, ensure_demo_appeal, get_appeal
    from petition.db import Database
    from petition.endorsements.tables import endorsements

    db = Database(url)
    await db.connect()
    await ensure_demo_appeal(db)
    appeal = await get_appeal(db, slug=DEMO_SLUG)
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i in range(count + count // 50):
        email = f"c{i}@bench{i}.example"
        name = synthetic_name(i)
        rows.append(
            dict(
                appeal_id=appeal["id"],
                organisation_name=name,
                name_normalised=name.casefold(),
                country="DE",
                city=CITIES[i % len(CITIES)],
                organisation_type="peace",
                website=f"https://org{i}.example.org",
                contact_name="x",
                contact_role="",
                contact_email=email,
                email_canonical=email,
                authorised=True,
                consent_version="1",
                visibility="public" if i < count else "anonymous",
                comment="",
                language="en",
                text_language="en",
                text_hash="0" * 64,
                state="confirmed",
                token_nonce=f"{i:032d}",
                created_at=now,
                updated_at=now,
                listed_at=now,
            )
        )
    async with db.write():
        for start in range(0, len(rows), 2000):
            await db.execute_many(endorsements.insert(), rows[start : start + 2000])
    await db.disconnect()


# --- the two children ---------------------------------------------------------------------


async def child_dossier(url: str, data_dir: str) -> None:
    from petition.appeals.queries import DEMO_SLUG, get_appeal
    from petition.db import Database
    from petition.dossiers import jobs
    from petition.settings import load_settings

    settings = load_settings(
        env_file=None,
        database_url=url,
        data_dir=data_dir,
        secret_key="bench-secret-key-0123456789",
        signing_p12="self-signed",  # one host: required with PostgreSQL
    )
    db = Database(url)
    await db.connect()
    appeal = await get_appeal(db, slug=DEMO_SLUG)
    dossier_id = await jobs.start_build(db, appeal_id=appeal["id"], country="DE", worker_id="bench")
    row = await jobs.get_dossier(db, dossier_id=dossier_id)
    built = await jobs.build(db, settings, dossier=row, worker_id="bench")
    await db.disconnect()
    print(
        f"pages={built.pages} named={built.named_count} bytes={built.path.stat().st_size}",
        flush=True,
    )


async def child_bare(url: str) -> None:
    from markupsafe import escape
    from weasyprint import HTML

    from petition.appeals.queries import DEMO_SLUG, get_appeal
    from petition.db import Database
    from petition.publish.queries import list_named

    db = Database(url)
    await db.connect()
    appeal = await get_appeal(db, slug=DEMO_SLUG)
    rows = await list_named(db, appeal=appeal, country="DE", limit=10_000_000, newest_first=False)
    await db.disconnect()
    body = "".join(
        f"<tr><td>{escape(r['organisation_name'])}</td><td>{escape(r['city'])}</td>"
        f"<td>{escape(r['organisation_type'])}</td><td>{escape(r['website'])}</td>"
        f"<td>{r['listed_at'].date().isoformat()}</td></tr>"
        for r in rows
    )
    html = (
        "<html><head><style>@page { size: A4; margin: 20mm 16mm } "
        "html { font-family: 'Noto Sans', 'Noto Sans Georgian', 'Noto Sans Armenian', 'Noto Sans Hebrew', "
        "'Noto Sans Arabic', sans-serif; font-size: 8.5pt } table { width: 100%; border-collapse: collapse } "
        "td { border-bottom: 0.4pt solid #ccc; padding: 0.8mm 1.5mm }</style></head><body><table>"
        "<thead><tr><th>Organisation</th><th>City</th><th>Type</th><th>Website</th><th>Endorsed</th></tr></thead>"
        f"<tbody>{body}</tbody></table></body></html>"
    )
    document = HTML(string=html).render()
    pdf = document.write_pdf()
    print(f"pages={len(document.pages)} named={len(rows)} bytes={len(pdf)}", flush=True)


# --- measuring ---------------------------------------------------------------------------

TIME_TARGET, MEMORY_TARGET = 0.20, 0.20  # of the bare render, at the largest size that has one
LARGE_SECONDS, LARGE_MIB = 180.0, 1024  # the dossier alone, at LARGE_SIZE and above
LARGE_SIZE = 100_000


@dataclass
class Measured:
    seconds: float
    cpu: float  # user + system seconds of the child and its descendants
    peak: int  # bytes of summed PSS
    at_peak: dict[str, int]  # that peak by process
    output: str
    load: str  # load average before and after


def _role(process: Any, child_pid: int) -> str:
    if process.pid == child_pid:
        return "main"
    command = " ".join(process.cmdline())
    if "resource_tracker" in command:
        return "tracker"
    if "forkserver" in command and process.ppid() == child_pid:
        return "forkserver"
    return "pool"


def _load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def measure(args: list[str]) -> Measured:
    """Run a child; wall and CPU time, peak summed PSS of its process tree (and by process)."""
    import psutil

    load_before = _load()
    cpu_seen: dict[int, float] = {}  # pid: user + system seconds when last sampled
    started = time.perf_counter()
    # This checkout's petition in the child and in the processes it starts: the render pool's
    # forkserver imports petition with the interpreter's default sys.path (Python 3.11's ignores the
    # parent's), so without PYTHONPATH the pool renders with the checkout of the editable install.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    peak = 0
    at_peak: dict[str, int] = {}
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, at_peak
        try:
            parent = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            total = 0
            split: dict[str, int] = {}
            try:
                for p in [parent, *parent.children(recursive=True)]:
                    try:
                        pss = p.memory_full_info().pss
                        role = _role(p, proc.pid)
                        times = p.cpu_times()
                        cpu_seen[p.pid] = times.user + times.system
                    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                        continue
                    total += pss
                    key = role if role != "pool" else f"pool {p.pid}"
                    split[key] = split.get(key, 0) + pss
            except psutil.NoSuchProcess:
                break
            if total > peak:
                peak, at_peak = total, split
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"child {args[:2]} failed with {proc.returncode}")
    cpu = sum(cpu_seen.values())
    line = out.strip().splitlines()[-1] if out.strip() else ""
    return Measured(elapsed, cpu, peak, at_peak, line, f"{load_before} -> {_load()}")


def _mib(value: int) -> str:
    return f"{value / 2**20:.0f}"


def report(label: str, m: Measured) -> None:
    print(f"  {label:<44} {m.seconds:7.1f} s  cpu {m.cpu:6.1f} s  peak {_mib(m.peak):>6} MiB  {m.output}")
    pools = sorted((v for k, v in m.at_peak.items() if k.startswith("pool ")), reverse=True)
    parts = [f"{k} {_mib(v)}" for k, v in m.at_peak.items() if not k.startswith("pool ")]
    parts += [f"pool {' + '.join(_mib(v) for v in pools)}"] if pools else []
    print(f"  {'':<44} at the peak (MiB): {', '.join(parts)}; load {m.load}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,20000", help="organisations, comma-separated")
    parser.add_argument("--bare-max", type=int, default=20_000, help="largest size with a bare render too")
    parser.add_argument("--child", choices=["dossier", "bare"])
    parser.add_argument("--db")
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.child == "dossier":
        if os.environ.get("DOSSIER_BENCH_LOG"):
            import logging

            logging.basicConfig(level=logging.INFO, format="%(relativeCreated)7.0f ms %(message)s")
        asyncio.run(child_dossier(args.db, args.data))
        return
    if args.child == "bare":
        asyncio.run(child_bare(args.db))
        return

    import petition
    from petition.migrations.runner import upgrade

    checkout = Path(petition.__file__).parent.parent
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  load: {_load()}  checkout: {checkout}")
    compared: list[tuple[int, Measured, Measured]] = []
    alone: list[tuple[int, Measured]] = []
    for size in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="dossier-bench-") as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            upgrade(url)
            asyncio.run(seed(url, size))
            dossier = measure(["--child", "dossier", "--db", url, "--data", f"{tmp}/data"])
            bare = measure(["--child", "bare", "--db", url]) if size <= args.bare_max else None
        print(f"\n{size} organisations")
        report("dossier (chunked, parallel, joined, signed):", dossier)
        if bare is None:
            alone.append((size, dossier))
            continue
        report("bare weasyprint, one table:", bare)
        print(
            f"  ratio dossier/bare: time {dossier.seconds / bare.seconds:.2f}  cpu {dossier.cpu / bare.cpu:.2f}  "
            f"peak memory {dossier.peak / bare.peak:.2f}"
        )
        compared.append((size, dossier, bare))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\nlargest single child process (RUSAGE_CHILDREN): {children:.0f} MiB")
    if compared:
        size, dossier, bare = max(compared, key=lambda entry: entry[0])
        ok_time = dossier.seconds / bare.seconds <= TIME_TARGET
        ok_mem = dossier.peak / bare.peak <= MEMORY_TARGET
        print(
            f"target at {size}: time <= {TIME_TARGET:.2f} x bare {'met' if ok_time else 'MISSED'}, "
            f"peak memory <= {MEMORY_TARGET:.2f} x bare {'met' if ok_mem else 'MISSED'}"
        )
    for size, dossier in alone:
        if size < LARGE_SIZE:
            continue
        ok_time = dossier.seconds <= LARGE_SECONDS
        ok_mem = dossier.peak <= LARGE_MIB * 2**20
        print(
            f"target at {size}: within {LARGE_SECONDS:.0f} s {'met' if ok_time else 'MISSED'} "
            f"({dossier.seconds:.0f} s), peak <= {LARGE_MIB} MiB {'met' if ok_mem else 'MISSED'} "
            f"({_mib(dossier.peak)} MiB)"
        )


if __name__ == "__main__":
    main()
