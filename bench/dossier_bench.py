"""Dossier rendering against a bare weasyprint render of the same rows, measured in one run.

    .venv/bin/python bench/dossier_bench.py [--sizes 1000,20000]

For each size: a temporary SQLite database gets that many named organisations
(synthetic names in Latin, Cyrillic, Greek, Georgian, Armenian, Arabic and Hebrew)
plus a few anonymous ones. Then, each in a fresh child process:

- dossier: `petition.dossiers.jobs.build` — gather, chunked render across the
  process pool, page marks and "page X of Y" laid over the joined pages, PAdES
  signature, stored file;
- bare: the same rows as one plain HTML table rendered by weasyprint in one go.

Time is wall-clock. Peak memory is the peak of the summed PSS (proportional set
size: a page shared by n processes counts 1/n in each, so forked pool processes
are not counted twice) of the child and all its descendants, the pool's processes
included, sampled every 50 ms with psutil; RUSAGE_CHILDREN's largest single
process RSS is printed as a cross-check.
Targets (issue 5): dossier time <= 0.35 x bare, peak memory <= 0.3 x bare.
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
from pathlib import Path

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


def measure(args: list[str]) -> tuple[float, int, str]:
    """Run a child; wall time, peak summed PSS of its process tree, its output line."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            parent = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            total = 0
            try:
                for p in [parent, *parent.children(recursive=True)]:
                    try:
                        total += p.memory_full_info().pss
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        pass
            except psutil.NoSuchProcess:
                break
            peak = max(peak, total)
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"child {args[:2]} failed with {proc.returncode}")
    return elapsed, peak, out.strip().splitlines()[-1] if out.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,20000")
    parser.add_argument("--child", choices=["dossier", "bare"])
    parser.add_argument("--db")
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.child == "dossier":
        asyncio.run(child_dossier(args.db, args.data))
        return
    if args.child == "bare":
        asyncio.run(child_bare(args.db))
        return

    from petition.migrations.runner import upgrade

    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}")
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="dossier-bench-") as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            upgrade(url)
            asyncio.run(seed(url, size))
            d_time, d_mem, d_out = measure(["--child", "dossier", "--db", url, "--data", f"{tmp}/data"])
            b_time, b_mem, b_out = measure(["--child", "bare", "--db", url])
        results.append((size, d_time, d_mem, b_time, b_mem))
        print(f"\n{size} organisations")
        print(f"  dossier (chunked, parallel, joined, signed): {d_time:7.1f} s  peak {d_mem / 2**20:7.0f} MiB  {d_out}")
        print(f"  bare weasyprint, one table:                  {b_time:7.1f} s  peak {b_mem / 2**20:7.0f} MiB  {b_out}")
        print(f"  ratio dossier/bare: time {d_time / b_time:.2f}  peak memory {d_mem / b_mem:.2f}")
    largest = max(results)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\nlargest single child process (RUSAGE_CHILDREN): {children:.0f} MiB")
    _size, d_time, d_mem, b_time, b_mem = largest
    ok_time, ok_mem = d_time / b_time <= 0.35, d_mem / b_mem <= 0.3
    print(
        f"target at {largest[0]}: time <= 0.35 {'met' if ok_time else 'MISSED'}, "
        f"memory <= 0.30 {'met' if ok_mem else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
