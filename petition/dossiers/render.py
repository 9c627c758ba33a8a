"""Rendering a dossier to PDF: weasyprint in a process pool, in chunks, joined.

weasyprint's time grows faster than linearly with one long table, so the list is
rendered in chunks of `CHUNK_ROWS` rows in parallel across cores. Each chunk starts
on a fresh page. The page marks (running head, list digest, "page X of Y") are a
separate, tiny weasyprint document with exactly as many pages as the joined chunks,
laid over every page when joining: its `counter(pages)` is the true total, so the
numbering is right across chunks without rendering anything twice.

Nothing here runs on the event loop: `render_pdf` awaits work done in the pool.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
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
CHUNK_ROWS = 1000
PDF_VARIANT = "pdf/a-3b"
CANONICAL_LIST_NAME = "canonical-list.txt"
LIST_DIGEST_KEY = "/PetitionListSHA256"
MARKS_XOBJECT = "/PetitionPageMarks"

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


_fetcher_cache: dict[str, Any] = {}


def url_fetcher() -> Any:
    if "fetcher" not in _fetcher_cache:
        _fetcher_cache["fetcher"] = _fetcher_class()(
            allowed_protocols={"file"}, fail_on_errors=False
        )
    return _fetcher_cache["fetcher"]


def render_html(html: str, *, variant: str | None = PDF_VARIANT) -> tuple[bytes, int]:
    """One HTML document to PDF bytes and its page count (in a pool process)."""
    from weasyprint import HTML

    document = HTML(string=html, base_url=ASSETS_URL, url_fetcher=url_fetcher()).render()
    pdf = document.write_pdf(pdf_variant=variant) if variant else document.write_pdf()
    return pdf, len(document.pages)


@dataclass(frozen=True)
class JoinSpec:
    title: str
    author: str
    language: str
    list_sha256: str
    canonical_list: bytes
    marks_html: str


def join_chunks(chunks: Sequence[bytes], spec: JoinSpec) -> bytes:
    """Concatenate the chunks, lay the page marks over every page, attach the list."""
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

    marks_pdf, marks_pages = render_html(spec.marks_html, variant=None)
    if marks_pages != len(writer.pages):
        raise RuntimeError(f"page marks have {marks_pages} pages for {len(writer.pages)} pages")
    marks = PdfReader(BytesIO(marks_pdf))
    opening = writer._add_object(_stream(DecodedStreamObject, b"q\n"))
    closing = writer._add_object(
        _stream(DecodedStreamObject, b"\nQ\nq " + MARKS_XOBJECT.encode() + b" Do Q\n")
    )
    for page, mark in zip(writer.pages, marks.pages, strict=True):
        form = _stream(DecodedStreamObject, _page_content(mark))
        form.update(
            {
                NameObject("/Type"): NameObject("/XObject"),
                NameObject("/Subtype"): NameObject("/Form"),
                NameObject("/BBox"): mark.mediabox,
                NameObject("/Resources"): mark["/Resources"].get_object().clone(writer),
            }
        )
        form_ref = writer._add_object(form)
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
        xobjects[NameObject(MARKS_XOBJECT)] = form_ref
        resources[NameObject("/XObject")] = xobjects
        page[NameObject("/Resources")] = resources
        contents = page["/Contents"].get_object() if "/Contents" in page else ArrayObject()
        old = list(contents) if isinstance(contents, ArrayObject) else [page.raw_get("/Contents")]
        page[NameObject("/Contents")] = ArrayObject([opening, *old, closing])

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
_pool_lock = threading.Lock()


def pool() -> ProcessPoolExecutor:
    """One process pool per process, started on first use (forkserver: no inherited threads)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["weasyprint", "pypdf", "pyhanko.sign"])
            workers = max(
                1, int(os.environ.get("PETITION_RENDER_PROCESSES", 0)) or os.cpu_count() or 1
            )
            _pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=context, max_tasks_per_child=50
            )
            atexit.register(shutdown_pool)
        return _pool


def shutdown_pool() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=True, cancel_futures=True)
            _pool = None


# --- HTML (built in the calling process, where the language and templates are) -------------


def chunks_of(rows: Sequence[Signatory], size: int = CHUNK_ROWS) -> list[Sequence[Signatory]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)] or [rows]


def qr_svg(url: str) -> Markup:
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    svg = image.to_string(encoding="unicode")
    return Markup(svg[svg.index("<svg") :])  # noqa: S704 - generated by qrcode from a URL it encodes


def css_string(text: str) -> str:
    """A CSS string literal that cannot end early, whatever `text` holds."""
    return (
        '"' + "".join(ch if ch.isalnum() or ch == " " else f"\\{ord(ch):06x}" for ch in text) + '"'
    )


def page_x_of_y() -> Markup:
    """'page X of Y' in the current language as CSS `content`, counters in place."""
    template = i18n.gettext("page %(page)s of %(pages)s")
    parts: list[str] = []
    rest = template
    while rest:
        positions = [(rest.find(p), p) for p in ("%(page)s", "%(pages)s") if p in rest]
        if not positions:
            parts.append(css_string(rest))
            break
        index, placeholder = min(positions)
        if index:
            parts.append(css_string(rest[:index]))
        parts.append("counter(page)" if placeholder == "%(page)s" else "counter(pages)")
        rest = rest[index + len(placeholder) :]
    return Markup(" ".join(parts))  # noqa: S704 - built from escaped CSS strings and counters


@dataclass(frozen=True)
class Presentation:
    """What the dossier shows beyond the content: links, certificate, author."""

    verification_url: str
    certificate_fingerprint: str
    author: str = "petition"


def _context(content: DossierContent, presentation: Presentation) -> dict[str, Any]:
    from petition.endorsements.forms import ORGANISATION_TYPE_LABELS
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
    tables: list[str]
    marks: Callable[[int], str]
    join: Callable[[str], JoinSpec]


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
        tables = [
            table_template.render(**context, rows=rows, first=i == 0, last=i == len(parts) - 1)
            for i, rows in enumerate(parts)
        ]
        marks_template = env.get_template("dossiers/pdf/marks.html")
        page_label = page_x_of_y()
        marks_context = {
            **context,
            "title": context["title"][:90] + ("…" if len(context["title"]) > 90 else ""),
        }

    def marks(pages: int) -> str:
        with i18n.language(content.language):
            return marks_template.render(**marks_context, pages=pages, page_x_of_y=page_label)

    def join(marks_html: str) -> JoinSpec:
        return JoinSpec(
            title=context["document_title"],
            author=presentation.author,
            language=content.language,
            list_sha256=content.list_sha256,
            canonical_list=content.canonical_list,
            marks_html=marks_html,
        )

    return DossierHTML(cover=cover, tables=tables, marks=marks, join=join)


async def render_pdf(
    content: DossierContent,
    presentation: Presentation,
    *,
    progress: Progress | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[bytes, int]:
    """The unsigned dossier PDF and its page count; every CPU-heavy step runs in the pool."""
    loop = asyncio.get_running_loop()
    html = await asyncio.to_thread(build_html, content, presentation, chunk_rows=chunk_rows)
    executor = pool()
    documents = [html.cover, *html.tables]
    total_steps = len(documents) + 1
    done = 0
    futures = [loop.run_in_executor(executor, render_html, doc) for doc in documents]
    del documents

    async def tracked(future: asyncio.Future[tuple[bytes, int]]) -> tuple[bytes, int]:
        nonlocal done
        result = await future
        done += 1
        if progress:
            progress(done, total_steps)
        return result

    started = loop.time()
    rendered = await asyncio.gather(*(tracked(f) for f in futures))
    rendered_at = loop.time()
    pages = sum(count for _pdf, count in rendered)
    spec = html.join(html.marks(pages))
    pdf = await loop.run_in_executor(
        executor, join_chunks, [data for data, _count in rendered], spec
    )
    log.info("dossier: %d documents rendered in %.1f s, marked and joined in %.1f s (%d pages)",
             len(futures), rendered_at - started, loop.time() - rendered_at, pages)
    if progress:
        progress(total_steps, total_steps)
    return pdf, pages
