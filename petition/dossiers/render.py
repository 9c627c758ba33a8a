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
Nothing here runs on the event loop: `render_pdf_file` awaits work done in the pool.

The join runs beside the pool, in a process of its own for each build: it takes the cover,
then each chunk as soon as the chunk and every one before it are rendered, so that when
the last chunk is rendered only the last chunks, the labels and writing the file remain.
On two cores three processes then share the CPU; the join's ~0.5 s a chunk of pypdf used
to wait for the end of the rendering, and took a third of a 100,000-row build's time.

What this process holds does not grow with the list beyond the content itself: each
chunk's HTML is built when the pool is about to need it (at most one more chunk than the
pool has processes is built or waiting at a time), and every rendered document goes to a
file in a working directory, which the join reads and writes the dossier to.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from petition.dossiers import join
from petition.dossiers.content import DossierContent
from petition.dossiers.presentation import CHUNK_ROWS, Presentation, build_html
from petition.dossiers.render_pool import (
    SHUTDOWN_GRACE,
    forkserver_context,
    pool,
    pool_workers,
    start_pool,
    stop_executor,
)
from petition.dossiers.typesetting import render_html_to

log = logging.getLogger("petition.dossiers")

#: The list's chunks tagged too (their structure trees merged by the join): ~25 % more CPU a
#: chunk (docs/benchmarks.md), for a dossier a screen reader can read to the end.
TAG_CHUNKS = True

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
    """The unsigned dossier PDF as bytes and its page count (`render_pdf_file` in a temporary
    directory: for small dossiers and tests)."""
    with tempfile.TemporaryDirectory(prefix="petition-dossier-") as tmp:
        out = Path(tmp) / "dossier.pdf"
        pages = await render_pdf_file(
            content,
            presentation,
            out,
            workdir=Path(tmp),
            progress=progress,
            chunk_rows=chunk_rows,
            label_pieces=label_pieces,
        )
        return await asyncio.to_thread(out.read_bytes), pages


async def render_pdf_file(
    content: DossierContent,
    presentation: Presentation,
    out: Path,
    *,
    workdir: Path,
    progress: Progress | None = None,
    chunk_rows: int = CHUNK_ROWS,
    label_pieces: int | None = None,
) -> int:
    """Render the unsigned dossier into the new file `out`; its page count.

    Every CPU-heavy step runs in the pool. The documents it is joined from are written to
    `workdir` (a private directory; the caller removes it). `label_pieces`: how many
    documents "page X of Y" is rendered in (default: one per pool process, each of at least
    `LABEL_PAGES` pages).
    """
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(start_pool)  # at once if the build started it already
    html = await asyncio.to_thread(build_html, content, presentation, chunk_rows=chunk_rows)
    executor = pool()
    started = loop.time()
    # A chunk's HTML is built (in a thread) while the pool renders the chunks before it, and
    # waits for a free slot: the pool's processes each have one document and one more is
    # queued, so none waits for work and the HTML of the whole list never piles up here.
    slots = asyncio.Semaphore(pool_workers() + 1)
    total_steps = 2 + html.chunks + 1
    done = 0

    async def render(name: str, text: str, plain: bool, tags: bool) -> tuple[Path, tuple[bool, ...]]:
        nonlocal done
        path = workdir / name
        call = functools.partial(render_html_to, str(path), text, tags=tags)
        if plain:
            call = functools.partial(call, variant=None)
        try:
            landscape = await loop.run_in_executor(executor, call)
        finally:
            slots.release()
        done += 1
        if progress:
            progress(done, total_steps)
        return path, landscape

    async def submit(
        name: str, make_html: Callable[[], str], *, plain: bool = False, tags: bool = False
    ) -> asyncio.Task[tuple[Path, tuple[bool, ...]]]:
        text = await asyncio.to_thread(make_html)
        await slots.acquire()
        return asyncio.create_task(render(name, text, plain, tags))

    # The shared marks (small) first, then the cover (the joined file's first document: the
    # join keeps its catalog, outline and structure tree), then each chunk in order. The
    # joining process takes each document as soon as it and those before it are rendered.
    # (The cover used to come last: the appeal texts are hyphenated, and the dictionaries,
    # ~8 MiB a language, stay in the process that rendered them until the pool replaces it
    # after 50 documents. Joining while the chunks render is worth more than those MiB.)
    tasks: list[asyncio.Task[tuple[Path, tuple[bool, ...]]]] = []
    ordered: asyncio.Queue[asyncio.Task[tuple[Path, tuple[bool, ...]]] | None] = asyncio.Queue()
    joining = ProcessPoolExecutor(max_workers=1, mp_context=forkserver_context())

    async def feed() -> None:
        # The process is forked when the first call is submitted: not on the event loop.
        await asyncio.wrap_future(await asyncio.to_thread(joining.submit, join.begin, str(workdir)))
        while (task := await ordered.get()) is not None:
            path, _ = await asyncio.shield(task)
            await loop.run_in_executor(joining, join.add, str(path))

    def queue(task: asyncio.Task[tuple[Path, tuple[bool, ...]]]) -> None:
        tasks.append(task)
        ordered.put_nowait(task)

    feeder = asyncio.create_task(feed())
    try:
        tasks.append(await submit("marks.pdf", lambda: html.marks, plain=True))
        # The cover, letter and appeal texts are tagged (a structure tree a screen reader follows).
        queue(await submit("cover.pdf", lambda: html.cover, tags=True))
        for i in range(html.chunks):
            for task in (*tasks, feeder):
                if task.done():
                    task.result()  # a document that failed fails the build now, not after the rest
            queue(await submit(f"chunk-{i:05d}.pdf", functools.partial(html.table, i), tags=TAG_CHUNKS))
        ordered.put_nowait(None)
        (marks, _), (_, cover_landscape), *tables = await asyncio.gather(*tasks)
        rendered_at = loop.time()
        landscape = [*cover_landscape, *(flag for _, flags in tables for flag in flags)]
        pages = len(landscape)
        if label_pieces is None:
            label_pieces = min(pool_workers(), max(1, math.ceil(pages / LABEL_PAGES)))
        label_docs = []
        for i, run in enumerate(label_runs(pages, label_pieces)):
            label_docs.append(
                loop.run_in_executor(
                    executor,
                    functools.partial(
                        render_html_to, str(workdir / f"labels-{i:03d}.pdf"), html.labels(landscape, run), variant=None
                    ),
                )
            )
        await asyncio.gather(*label_docs)
        labels = [str(workdir / f"labels-{i:03d}.pdf") for i in range(len(label_docs))]
        labelled_at = loop.time()
        await feeder
        fed_at = loop.time()
        await loop.run_in_executor(joining, join.finish, str(marks), labels, html.join, str(out))
    except BaseException:
        for task in (*tasks, feeder):
            task.cancel()
        if feeder.done() and not feeder.cancelled():
            feeder.exception()  # the same failure as the one raised here: retrieved, not logged again
        raise
    finally:
        await asyncio.to_thread(stop_executor, joining, grace=SHUTDOWN_GRACE)
    log.info(
        "dossier: %d documents rendered in %.1f s, %d page labels in %.1f s, "
        "the last documents joined in %.1f s more, the dossier written in %.1f s (%d pages)",
        len(tasks),
        rendered_at - started,
        len(label_docs),
        labelled_at - rendered_at,
        fed_at - labelled_at,
        loop.time() - fed_at,
        pages,
    )
    if progress:
        progress(total_steps, total_steps)
    return pages
