"""Rendering a dossier to PDF: weasyprint in a process pool, in chunks, joined.

weasyprint's time grows faster than linearly with one long table, so the list is
rendered in chunks of `CHUNK_ROWS` rows in parallel across cores. Each chunk starts
on a fresh page. What is printed on every page is laid over the pages when joining,
as form XObjects: the running head and list digest are one small document with one
page per page size, shared by every page of that size; "page X of Y" is rendered
once the chunks are done and their page counts known, as documents of one label per
page (in pieces, in parallel), with the numbers written out, so the numbering is
right across chunks without rendering anything twice.

The steps live in their own modules: `presentation` builds the HTML, `typesetting` is
weasyprint in a pool process, `render_pool` the pool, `join` puts the PDFs together.
Nothing here runs on the event loop: `render_pdf` awaits work done in the pool.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Callable
from concurrent.futures import Future

from petition.dossiers.content import DossierContent
from petition.dossiers.join import join_chunks
from petition.dossiers.presentation import CHUNK_ROWS, Presentation, build_html
from petition.dossiers.render_pool import pool, pool_workers, start_pool
from petition.dossiers.typesetting import Rendered, render_html

log = logging.getLogger("petition.dossiers")

#: Fewest pages worth a "page X of Y" document of their own (a document costs ~50 ms).
LABEL_PAGES = 100

Progress = Callable[[int, int], None]


def label_runs(total: int, pieces: int) -> list[range]:
    """Page numbers 1…`total` split into `pieces` runs of nearly equal length."""
    pieces = max(1, min(pieces, total))
    bounds = [round(total * i / pieces) for i in range(pieces + 1)]
    return [range(bounds[i] + 1, bounds[i + 1] + 1) for i in range(pieces)]


async def render_pdf(
    content: DossierContent,
    presentation: Presentation,
    *,
    progress: Progress | None = None,
    chunk_rows: int = CHUNK_ROWS,
    label_pieces: int | None = None,
) -> tuple[bytes, int]:
    """The unsigned dossier PDF and its page count; every CPU-heavy step runs in the pool.

    `label_pieces`: how many documents "page X of Y" is rendered in (default: one per
    pool process, each of at least `LABEL_PAGES` pages).
    """
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(start_pool)  # at once if the build started it already
    html = await asyncio.to_thread(build_html, content, presentation, chunk_rows=chunk_rows)
    executor = pool()
    plain = functools.partial(render_html, variant=None)
    started = loop.time()

    def submit() -> list[Future[Rendered]]:
        # The cover and the shared marks (both small) first, then each chunk as soon as its
        # HTML is built: the pool renders the first chunks while the later ones are built.
        submitted = [executor.submit(render_html, html.cover), executor.submit(plain, html.marks)]
        submitted += [executor.submit(render_html, html.table(i)) for i in range(html.chunks)]
        return submitted

    futures = [asyncio.wrap_future(f) for f in await asyncio.to_thread(submit)]
    total_steps = len(futures) + 1
    done = 0

    async def tracked(future: asyncio.Future[Rendered]) -> Rendered:
        nonlocal done
        result = await future
        done += 1
        if progress:
            progress(done, total_steps)
        return result

    cover, marks, *tables = await asyncio.gather(*(tracked(f) for f in futures))
    rendered_at = loop.time()
    chunks = [cover, *tables]
    landscape = [flag for chunk in chunks for flag in chunk.landscape]
    pages = len(landscape)
    if label_pieces is None:
        label_pieces = min(pool_workers(), max(1, math.ceil(pages / LABEL_PAGES)))
    label_docs = await asyncio.gather(
        *(loop.run_in_executor(executor, plain, html.labels(landscape, run)) for run in label_runs(pages, label_pieces))
    )
    labelled_at = loop.time()
    pdf = await loop.run_in_executor(
        executor,
        join_chunks,
        [chunk.pdf for chunk in chunks],
        marks.pdf,
        [doc.pdf for doc in label_docs],
        html.join,
    )
    log.info(
        "dossier: %d documents rendered in %.1f s, %d page labels in %.1f s, joined in %.1f s (%d pages)",
        len(futures),
        rendered_at - started,
        len(label_docs),
        labelled_at - rendered_at,
        loop.time() - labelled_at,
        pages,
    )
    if progress:
        progress(total_steps, total_steps)
    return pdf, pages
