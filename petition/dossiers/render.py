"""Rendering a dossier to PDF: weasyprint in a process pool, in chunks, joined.

weasyprint's time grows faster than linearly with one long table, so the list is
rendered in chunks of `CHUNK_ROWS` rows in parallel across cores. Each chunk starts
on a fresh page. What is printed on every page is laid over the pages when joining,
as form XObjects: the running head and list digest are one small document with one
page per page size, shared by every page of that size; "page X of Y" is rendered
once the chunks are done and their page counts known, as documents of one label per
page (in pieces, in parallel), with the numbers written out, so the numbering is
right across chunks without rendering anything twice.

weasyprint gets a user-agent stylesheet of our own (`assets/ua.css`): its HTML5 one
makes the cascade compute six pseudo-element styles for every element.

Nothing here runs on the event loop: `render_pdf` awaits work done in the pool.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import functools
import gc
import logging
import math
import multiprocessing
import os
import threading
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from markupsafe import Markup

from petition import i18n
from petition.dossiers.content import DossierContent, Signatory

log = logging.getLogger("petition.dossiers")

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
ASSETS_URL = ASSETS_DIR.as_uri() + "/"
UA_STYLESHEET = ASSETS_DIR / "ua.css"
CHUNK_ROWS = 1000
#: Fewest pages worth a "page X of Y" document of their own (a document costs ~50 ms).
LABEL_PAGES = 100
PDF_VARIANT = "pdf/a-3b"
CANONICAL_LIST_NAME = "canonical-list.txt"
LIST_DIGEST_KEY = "/PetitionListSHA256"
MARKS_XOBJECT = "/PetitionPageMarks"
LABEL_XOBJECT = "/PetitionPageLabel"

Progress = Callable[[int, int], None]


# --- what runs in the pool's processes -------------------------------------------------------


def _fetcher_class() -> type:
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class AssetFetcher(URLFetcher):  # type: ignore[misc]
        """Serves the dossier's own assets and refuses every other URL.

        No network, no `data:`, no file outside `petition/dossiers/assets/`: a name
        that somehow became markup still fetches nothing.
        """

        def fetch(self, url: str, headers: Any = None) -> Any:
            path = asset_path(url)
            if path is None:
                raise ValueError(f"the dossier renderer fetches no {url[:80]!r}")
            return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": _mime(path)})

    return AssetFetcher


def asset_path(url: str) -> Path | None:
    """The file an asset URL names, if it is a file directly inside the assets folder."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost") or parts.query:
        return None
    path = Path(unquote(parts.path))
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if resolved.parent != ASSETS_DIR or not resolved.is_file():
        return None
    return resolved


def _mime(path: Path) -> str:
    return {".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}.get(
        path.suffix, "application/octet-stream"
    )


#: Built on first use in each process: the URL fetcher and the `HTML` class.
_process_cache: dict[str, Any] = {}


def url_fetcher() -> Any:
    if "fetcher" not in _process_cache:
        _process_cache["fetcher"] = _fetcher_class()(
            allowed_protocols={"file"}, fail_on_errors=False
        )
    return _process_cache["fetcher"]


def _html_class() -> type:
    """weasyprint's `HTML` with the dossier's user-agent stylesheet instead of its own.

    weasyprint asks `HTML._ua_stylesheets()` for the user-agent sheets (70.0 does; no
    public option replaces them): tests/dossiers/test_render.py fails if it goes away.
    """
    if "html" not in _process_cache:
        from weasyprint import CSS, HTML

        sheet = CSS(
            string=UA_STYLESHEET.read_text(encoding="utf-8"),
            base_url=ASSETS_URL,
            url_fetcher=url_fetcher(),
        )

        class DossierDocument(HTML):  # type: ignore[misc]
            def _ua_stylesheets(self, forms: bool = False) -> list[Any]:
                return [sheet]

        _process_cache["html"] = DossierDocument
    return _process_cache["html"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Rendered:
    pdf: bytes
    landscape: tuple[bool, ...]  # one per page

    @property
    def pages(self) -> int:
        return len(self.landscape)


def render_html(html: str, *, variant: str | None = PDF_VARIANT) -> Rendered:
    """One HTML document to PDF bytes, with the orientation of each page (in a pool process).

    The cyclic garbage collector is off while weasyprint works: its layout allocates
    millions of objects and the collector kept rescanning them (a tenth of a chunk's
    time). The peak is the same without it; the garbage goes in one collection after.
    """
    gc.disable()
    try:
        rendered = on_roomy_stack(_render, html, variant)
    finally:
        gc.enable()
    _release_memory()
    return rendered


def _render(html: str, variant: str | None) -> Rendered:
    document = _html_class()(string=html, base_url=ASSETS_URL, url_fetcher=url_fetcher()).render()
    pdf = document.write_pdf(pdf_variant=variant) if variant else document.write_pdf()
    return Rendered(pdf, tuple(page.width > page.height for page in document.pages))


def on_roomy_stack(fn: Callable[..., Any], /, *args: Any) -> Any:
    """`fn(*args)`, called from a frame that reserves room for the whole call stack below it.

    CPython 3.11 keeps Python frames in 16 KiB chunks, mmap()ed when a call does not fit
    in the current chunk and munmap()ed when that call returns. weasyprint's layout
    recurses up and down thousands of times a second; where its depth straddled a chunk
    boundary, one 1,000-row chunk cost ~84,000 mmap/munmap pairs and a fifth to a half
    of its time in the kernel, depending on where the boundary fell. This frame reserves
    64 Ki slots (see below), so the interpreter gives it a chunk of its own of 1 MiB,
    and every frame of the render fits in the rest of that chunk.
    """
    return fn(*args)


on_roomy_stack.__code__ = on_roomy_stack.__code__.replace(co_stacksize=1 << 16)


def _release_memory() -> None:
    """Give a finished document's memory back to the system before the next one.

    A chunk's layout is ~100 MiB of small objects in reference cycles; freed, glibc keeps
    most of it mapped in the process, and each pool process would hold its largest
    chunk's worth for good.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def prepare_process() -> None:
    """Each pool process, as it starts: load the fonts before the first document arrives.

    Then `gc.freeze()`: the modules and caches loaded so far live as long as the process,
    so the collection after each document need not scan them again.
    """
    render_html("<p style=\"font-family: 'Noto Sans'\">·</p>", variant=None)
    gc.freeze()


@dataclass(frozen=True)
class JoinSpec:
    title: str
    author: str
    language: str
    list_sha256: str
    canonical_list: bytes


def join_chunks(
    chunks: Sequence[bytes], marks: bytes, labels: Sequence[bytes], spec: JoinSpec
) -> bytes:
    """Concatenate the chunks, lay the marks and labels over every page, attach the list.

    `marks` has one page per page size (portrait, then landscape); `labels` hold one
    page per page of the chunks, in order.
    """
    import datetime as dt

    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import (
        ArrayObject,
        DecodedStreamObject,
        DictionaryObject,
        NameObject,
        NumberObject,
        TextStringObject,
    )

    writer = PdfWriter(clone_from=PdfReader(BytesIO(chunks[0])))
    for data in chunks[1:]:
        writer.append(PdfReader(BytesIO(data)), import_outline=False)

    label_pages = [page for data in labels for page in PdfReader(BytesIO(data)).pages]
    if len(label_pages) != len(writer.pages):
        raise RuntimeError(f"{len(label_pages)} page labels for {len(writer.pages)} pages")
    shared = {
        _landscape(page): writer._add_object(_form(writer, page))
        for page in PdfReader(BytesIO(marks)).pages
    }
    opening = writer._add_object(_stream(DecodedStreamObject, b"q\n"))
    closing = writer._add_object(
        _stream(
            DecodedStreamObject,
            b"\nQ\nq " + MARKS_XOBJECT.encode() + b" Do Q q " + LABEL_XOBJECT.encode() + b" Do Q\n",
        )
    )
    for page, label in zip(writer.pages, label_pages, strict=True):
        landscape = _landscape(page)
        if landscape != _landscape(label) or landscape not in shared:
            raise RuntimeError("a page label or page mark does not fit its page")
        # Pages may share one resource dictionary: give each page its own shallow copy.
        resources = (
            DictionaryObject(page["/Resources"].get_object())
            if "/Resources" in page
            else DictionaryObject()
        )
        xobjects = (
            DictionaryObject(resources["/XObject"].get_object())
            if "/XObject" in resources
            else DictionaryObject()
        )
        xobjects[NameObject(MARKS_XOBJECT)] = shared[landscape]
        xobjects[NameObject(LABEL_XOBJECT)] = writer._add_object(_form(writer, label))
        resources[NameObject("/XObject")] = xobjects
        page[NameObject("/Resources")] = resources
        contents = page["/Contents"].get_object() if "/Contents" in page else ArrayObject()
        old = list(contents) if isinstance(contents, ArrayObject) else [page.raw_get("/Contents")]
        page[NameObject("/Contents")] = ArrayObject([opening, *old, closing])
    del label_pages

    attachment = writer.add_attachment(CANONICAL_LIST_NAME, spec.canonical_list)
    attachment.subtype = NameObject("/text#2Fplain")
    attachment.associated_file_relationship = NameObject("/Data")
    attachment.description = TextStringObject(
        "The canonical list whose SHA-256 is printed on the cover"
    )
    attachment.modification_date = dt.datetime.now(dt.UTC)
    attachment.size = NumberObject(len(spec.canonical_list))
    writer._root_object[NameObject("/AF")] = ArrayObject(
        [writer._add_object(attachment.pdf_object)]
    )
    writer._root_object[NameObject("/Lang")] = TextStringObject(spec.language)

    writer.add_metadata(
        {
            "/Title": spec.title,
            "/Author": spec.author,
            "/Creator": "petition",
            LIST_DIGEST_KEY: spec.list_sha256,
        }
    )
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _landscape(page: Any) -> bool:
    return bool(page.mediabox.width > page.mediabox.height)


def _form(writer: Any, page: Any) -> Any:
    """A page of another PDF as a form XObject for `writer`."""
    from pypdf.generic import DecodedStreamObject, NameObject

    form = _stream(DecodedStreamObject, _page_content(page))
    form.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Form"),
            NameObject("/BBox"): page.mediabox,
            NameObject("/Resources"): page["/Resources"].get_object().clone(writer),
        }
    )
    return form


def _stream(cls: Any, data: bytes) -> Any:
    stream = cls()
    stream.set_data(data)
    return stream


def _page_content(page: Any) -> bytes:
    from pypdf.generic import ArrayObject

    contents = page["/Contents"].get_object()
    parts = list(contents) if isinstance(contents, ArrayObject) else [contents]
    return b"\n".join(part.get_object().get_data() for part in parts)


# --- the pool ----------------------------------------------------------------------------------

_pool: ProcessPoolExecutor | None = None
_pool_workers = 0
_pool_started = False
_pool_lock = threading.Lock()
_start_lock = threading.Lock()  # held while the first processes start: not _pool_lock
_exit_hook = False
#: What the forkserver imports once, for every pool process it forks (the verification pool's too).
FORKSERVER_PRELOAD = ["weasyprint", "pypdf", "pyhanko.sign"]
#: Seconds a running render may finish in when the pool is shut down; then its process is ended.
SHUTDOWN_GRACE = 5.0


def forkserver_context() -> Any:
    """The start method of every dossier pool: forked from one server that imported the libraries
    (no threads inherited from the web process, and a new process costs milliseconds)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(FORKSERVER_PRELOAD)  # no effect once the server runs
    return context


def pool() -> ProcessPoolExecutor:
    """One process pool per process, started on first use (forkserver: no inherited threads)."""
    global _pool, _pool_workers, _exit_hook
    with _pool_lock:
        if _pool is None:
            _pool_workers = max(
                1, int(os.environ.get("PETITION_RENDER_PROCESSES", 0)) or os.cpu_count() or 1
            )
            _pool = ProcessPoolExecutor(
                max_workers=_pool_workers,
                mp_context=forkserver_context(),
                initializer=prepare_process,
                max_tasks_per_child=50,
            )
            if not _exit_hook:  # the CLI's builds; the web app shuts the pool down in its lifespan
                atexit.register(shutdown_pool)
                _exit_hook = True
        return _pool


def pool_workers() -> int:
    pool()
    return _pool_workers


def start_pool() -> None:
    """Start every pool process now (each prepares itself); returns without waiting for them.

    The first submit blocks until the forkserver has imported weasyprint, pypdf and
    pyHanko (about a second): call this in a thread, early, so that it overlaps with
    gathering the content instead of delaying the first chunk.
    """
    global _pool_started
    executor = pool()
    with _start_lock:
        if _pool_started:
            return
        _pool_started = True
        for _ in range(_pool_workers):
            executor.submit(os.getpid)


def shutdown_pool(grace: float = SHUTDOWN_GRACE) -> None:
    """Stop the pool and every one of its processes (blocking: call it in a thread from async code).

    Queued work is cancelled; a render still running gets `grace` seconds, then its process
    is ended: a build cut short is claimed again by a worker once its lease runs out.
    """
    global _pool, _pool_started
    with _pool_lock:
        if _pool is not None:
            stop_executor(_pool, grace=grace)
            _pool = None
            _pool_started = False


def stop_executor(executor: ProcessPoolExecutor, *, grace: float) -> None:
    """Shut `executor` down and leave none of its processes running after about `grace` seconds.

    `shutdown(wait=True)` waits for every running task, however long it takes, and
    `shutdown(wait=False)` returns with the processes still at work. Before Python 3.14
    (`terminate_workers`) the executor offers no public handle on its processes, so its
    `_processes` are read here; tests/dossiers/test_verify_pools.py
    (`test_no_pool_process_outlives_the_app`) fails if that stops working.
    """
    import contextlib
    import time

    def processes() -> list[Any]:
        return list((getattr(executor, "_processes", None) or {}).values())

    known = processes()
    executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace
    for process in known:
        with contextlib.suppress(ValueError, AssertionError):  # closed, or never started
            process.join(max(0.0, deadline - time.monotonic()))
    if hasattr(executor, "terminate_workers"):  # Python 3.14
        executor.terminate_workers()
    for process in {id(p): p for p in (*known, *processes())}.values():
        with contextlib.suppress(ValueError, AssertionError):
            if process.is_alive():
                process.terminate()
                process.join(2)
            if process.is_alive():
                process.kill()
                process.join(2)
    executor.shutdown(wait=True)


# --- HTML (built in the calling process, where the language and templates are) -------------


def chunks_of(rows: Sequence[Signatory], size: int = CHUNK_ROWS) -> list[Sequence[Signatory]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)] or [rows]


def qr_svg(url: str) -> Markup:
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    svg = image.to_string(encoding="unicode")
    return Markup(svg[svg.index("<svg") :])  # noqa: S704 - generated by qrcode from a URL it encodes


def direction(text: str) -> Markup:
    """` dir="rtl"` for text that starts right to left, else nothing.

    The first strong character decides, as `dir="auto"` would: weasyprint ignores
    `dir="auto"`, so an Arabic or Hebrew name gets `dir="rtl"` and its cell is set
    from the right; every other cell keeps the table's direction.
    """
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return Markup(' dir="rtl"')
        if kind == "L":
            break
    return Markup("")


def label_runs(total: int, pieces: int) -> list[range]:
    """Page numbers 1…`total` split into `pieces` runs of nearly equal length."""
    pieces = max(1, min(pieces, total))
    bounds = [round(total * i / pieces) for i in range(pieces + 1)]
    return [range(bounds[i] + 1, bounds[i + 1] + 1) for i in range(pieces)]


@dataclass(frozen=True)
class Presentation:
    """What the dossier shows beyond the content: links, certificate, author."""

    verification_url: str
    certificate_fingerprint: str
    author: str = "petition"


def _context(content: DossierContent, presentation: Presentation) -> dict[str, Any]:
    from petition.endorsements.vocabulary import ORGANISATION_TYPE_LABELS
    from petition.i18n import country_name

    return {
        "lang": content.language,
        "author": presentation.author,
        "document_title": f"{content.title} – {country_name(content.country, content.language)}",
        "country": content.country,
        "title": content.title,
        "texts": content.texts,
        "named_count": content.named_count,
        "anonymous_count": content.anonymous_count,
        "total_count": content.total_count,
        "generated_at": content.generated_at,
        "list_sha256": content.list_sha256,
        "verification_url": presentation.verification_url,
        "certificate_fingerprint": presentation.certificate_fingerprint,
        "type_labels": {code: str(label) for code, label in ORGANISATION_TYPE_LABELS.items()},
    }


@dataclass(frozen=True)
class DossierHTML:
    cover: str
    chunks: int
    table: Callable[[int], str]  # the HTML of chunk i, built when asked for
    marks: str
    labels: Callable[[Sequence[bool], range], str]
    join: JoinSpec


def build_html(
    content: DossierContent, presentation: Presentation, *, chunk_rows: int = CHUNK_ROWS
) -> DossierHTML:
    from petition.templating import make_environment

    env = make_environment()
    with i18n.language(content.language):
        context = _context(content, presentation)
        cover = env.get_template("dossiers/pdf/cover.html").render(
            **context, qr_svg=qr_svg(presentation.verification_url)
        )
        table_template = env.get_template("dossiers/pdf/table.html")
        parts = chunks_of(content.signatories, chunk_rows)
        marks = env.get_template("dossiers/pdf/marks.html").render(
            {**context, "title": context["title"][:90] + ("…" if len(context["title"]) > 90 else "")}
        )
        labels_template = env.get_template("dossiers/pdf/labels.html")
        page_x_of_y = i18n.gettext("page %(page)s of %(pages)s")

    def table(i: int) -> str:
        with i18n.language(content.language):
            return table_template.render(
                **context, rows=parts[i], first=i == 0, last=i == len(parts) - 1, direction=direction
            )

    def labels(landscape: Sequence[bool], numbers: range) -> str:
        """The "page X of Y" labels of the pages `numbers` of `len(landscape)`, one a page."""
        total = len(landscape)
        return labels_template.render(
            lang=content.language,
            labels=[
                (page_x_of_y % {"page": n, "pages": total}, landscape[n - 1]) for n in numbers
            ],
        )

    join = JoinSpec(
        title=context["document_title"],
        author=presentation.author,
        language=content.language,
        list_sha256=content.list_sha256,
        canonical_list=content.canonical_list,
    )
    return DossierHTML(
        cover=cover, chunks=len(parts), table=table, marks=marks, labels=labels, join=join
    )


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
        *(
            loop.run_in_executor(executor, plain, html.labels(landscape, run))
            for run in label_runs(pages, label_pieces)
        )
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
        "dossier: %d documents rendered in %.1f s, %d page labels in %.1f s, joined in %.1f s"
        " (%d pages)",
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
