"""CPU of the dossier's chunks (1,000 rows each here), rendered one after another in this process.

    .venv/bin/python bench/dossier_chunk.py                     # 7 chunks, one per script
    .venv/bin/python bench/dossier_chunk.py --chunks all        # every chunk of 20,000 rows
    .venv/bin/python bench/dossier_chunk.py --profile 1         # cProfile of chunk 1
    .venv/bin/python bench/dossier_chunk.py --save /tmp/chunks  # also write each chunk's PDF

The rows are `dossier_bench`'s synthetic organisations (20,000 by default), collated as a
dossier is, and cut into chunks of `--rows` (1,000 by default, what the dossier used until
2026-12-04 and what the measurements in docs/benchmarks.md use; the dossier's own
`CHUNK_ROWS` is 480 now) by `presentation.build_html`; each chunk is
rendered by `typesetting.render_html`, as a pool process renders it (the fonts loaded
first). The default chunks (1, 4, 7, …, 19) are one of each script: Latin, Greek,
Cyrillic, Georgian, Armenian, Hebrew, Arabic. It prints each chunk's CPU seconds (user +
system of this process) and pages, and their sum: on a shared machine CPU seconds are the
steadier measure. `--repeat N` renders the chunks N times and keeps each chunk's lowest. `--tags` renders
them tagged (weasyprint's `pdf_tags`), as the dossier's documents are.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import hashlib
import os
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dossier_bench import CITIES, synthetic_name  # noqa: E402


def chunk_html(size: int, chunk_rows: int = 1000) -> tuple[int, Callable[[int], str]]:
    from petition.dossiers.content import DossierContent, Signatory, canonical_list, sort_signatories
    from petition.dossiers.presentation import Presentation, build_html

    raw = [
        Signatory(
            name=synthetic_name(i),
            city=CITIES[i % len(CITIES)],
            organisation_type="peace",
            website=f"https://org{i}.example.org",
            endorsed_on=dt.date(2026, 1 + i % 12, 1 + i % 28),
        )
        for i in range(size)
    ]
    rows = sort_signatories(raw)
    data = canonical_list(appeal_slug="bench", country="DE", signatories=rows, anonymous_count=size // 50)
    content = DossierContent(
        appeal_id=1,
        appeal_slug="bench",
        country="DE",
        language="de",
        texts=(),
        signatories=tuple(rows),
        anonymous_count=size // 50,
        generated_at=dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC),
        canonical_list=data,
        list_sha256=hashlib.sha256(data).hexdigest(),
    )
    presentation = Presentation(verification_url="https://example.org/v", certificate_fingerprint="0" * 64)
    html = build_html(content, presentation, chunk_rows=chunk_rows)
    return html.chunks, html.table


def cpu() -> float:
    times = os.times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=1000, help="rows a chunk")
    parser.add_argument("--chunks", default="1,4,7,10,13,16,19", help="chunk numbers, comma-separated, or all")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", type=int, help="profile this chunk instead")
    parser.add_argument("--save", help="a directory to write each chunk's PDF to")
    parser.add_argument("--tags", action="store_true", help="render the chunks tagged (PDF/UA structure tree)")
    args = parser.parse_args()

    from petition.dossiers.typesetting import load_fonts, render_html

    count, table = chunk_html(args.size, args.rows)
    load_fonts()
    tagged = {"tags": True} if args.tags else {}  # older checkouts' render_html has no `tags`
    if args.profile is not None:
        text = table(args.profile)
        render_html(text, **tagged)  # warm: fonts, caches
        profiler = cProfile.Profile()
        profiler.enable()
        render_html(text, **tagged)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
        return
    numbers = list(range(count)) if args.chunks == "all" else [int(n) for n in args.chunks.split(",")]
    best: dict[int, tuple[float, float, int]] = {}
    render_html(table(numbers[0]), **tagged)  # warm
    for _ in range(args.repeat):
        for n in numbers:
            started, wall = cpu(), time.perf_counter()
            text = table(n)
            built = cpu() - started
            rendered = render_html(text, **tagged)
            spent = cpu() - started
            if n not in best or spent < best[n][0]:
                best[n] = (spent, built, rendered.pages)
            if args.save:
                Path(args.save).mkdir(parents=True, exist_ok=True)
                (Path(args.save) / f"chunk-{n:02d}.pdf").write_bytes(rendered.pdf)
            print(
                f"chunk {n:2d}: cpu {spent:5.2f} s (html {built:4.2f})  wall {time.perf_counter() - wall:5.2f} s  "
                f"pages {rendered.pages}",
                flush=True,
            )
    total = sum(spent for spent, _, _ in best.values())
    print(f"{len(best)} chunks: cpu {total:.2f} s, {total / len(best):.3f} s a chunk (lowest of {args.repeat})")


if __name__ == "__main__":
    main()
