"""weasyprint, as each pool process runs it: HTML in, PDF bytes and page orientations out.

weasyprint gets a user-agent stylesheet of our own (`assets/ua.css`): its HTML5 one
makes the cascade compute six pseudo-element styles for every element. Its URL fetcher
serves the dossier's own assets and nothing else.

This module is what the render pool's processes import: it loads weasyprint only when
a document is rendered, and nothing of the web application.
"""

from __future__ import annotations

import ctypes
import gc
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from petition.resources import package_path

ASSETS_DIR = package_path("dossiers", "assets")
ASSETS_URL = ASSETS_DIR.as_uri() + "/"
UA_STYLESHEET = ASSETS_DIR / "ua.css"
PDF_VARIANT = "pdf/a-3b"


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
        _process_cache["fetcher"] = _fetcher_class()(allowed_protocols={"file"}, fail_on_errors=False)
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


def _install_cell_tags() -> None:
    """Table cells hold their text's marked content directly, without a /Span for each text.

    weasyprint's tagging (70.0: `weasyprint.pdf.add_tags`, which `generate_pdf` calls by
    that name) makes a /Span element for every text box, so a list's cell is two elements:
    the /TD and one /Span holding one MCID. The span adds nothing a screen reader uses, and
    it was ~4,100 of a 1,000-row chunk's ~10,600 elements, each written by pydyf, parsed
    again by the join and written once more into the dossier. After weasyprint has built
    the tree, each such span's MCID moves up into its cell's /K (where the span was), the
    parent tree's entry for that MCID names the cell, and the span's object is emptied:
    nothing refers to it, so the join (which copies what is referred to) leaves it out.

    A span that carries anything else, or lies on another page than its cell, stays.
    tests/dossiers/test_render.py fails if weasyprint stops calling `add_tags` by name.
    """
    import weasyprint.pdf

    build = weasyprint.pdf.add_tags
    if hasattr(build, "weasyprint_add_tags"):
        return  # installed in this process already

    def add_tags(pdf: Any, *args: Any, **kwargs: Any) -> None:
        build(pdf, *args, **kwargs)
        _lift_cell_spans(pdf)

    add_tags.weasyprint_add_tags = build  # type: ignore[attr-defined]
    weasyprint.pdf.add_tags = add_tags


def _lift_cell_spans(pdf: Any) -> None:
    objects: list[Any] = pdf.objects  # pydyf objects: a Dictionary is a dict with a `reference`

    def target(reference: Any) -> Any:
        return objects[int(reference.split(b" ", 1)[0])] if isinstance(reference, bytes) else None

    moved: dict[bytes, bytes] = {}
    for element in objects:
        if not isinstance(element, dict) or element.get("S") not in ("/TD", "/TH"):
            continue
        kids = element.get("K")
        if not kids:
            continue
        for i, kid in enumerate(kids):
            span = target(kid)
            if (
                isinstance(span, dict)
                and span.get("S") == "/Span"
                and span.keys() == {"Type", "S", "K", "Pg", "P"}
                and span["Pg"] == element.get("Pg")
                and len(span["K"]) == 1
                and type(span["K"][0]) is int
            ):
                kids[i] = span["K"][0]
                moved[kid] = cast(Any, element).reference
                span.clear()
    if not moved:
        return
    root = target(pdf.catalog.get("StructTreeRoot"))
    parent_tree = target(root["ParentTree"]) if isinstance(root, dict) else None
    nums = parent_tree.get("Nums", ()) if isinstance(parent_tree, dict) else ()
    for entry in nums[1::2]:
        if isinstance(entry, list):
            entry[:] = [moved.get(ref, ref) if isinstance(ref, bytes) else ref for ref in entry]


@dataclass(frozen=True)
class Rendered:
    pdf: bytes
    landscape: tuple[bool, ...]  # one per page

    @property
    def pages(self) -> int:
        return len(self.landscape)


def render_html(html: str, *, variant: str | None = PDF_VARIANT, tags: bool = False) -> Rendered:
    """One HTML document to PDF bytes, with the orientation of each page (in a pool process).

    `tags`: a tagged PDF (weasyprint's `pdf_tags`: a structure tree, /MarkInfo), as the
    dossier's documents are (`render.TAG_CHUNKS`; the join merges their trees).

    The cyclic garbage collector is off while weasyprint works: its layout allocates
    millions of objects and the collector kept rescanning them (a tenth of a chunk's
    time). The peak is the same without it; the garbage goes in one collection after.
    """
    gc.disable()
    try:
        rendered = on_roomy_stack(_render, html, variant, tags)
    finally:
        gc.enable()
    _release_memory()
    return rendered


def render_html_to(path: str, html: str, *, variant: str | None = PDF_VARIANT, tags: bool = False) -> tuple[bool, ...]:
    """`render_html`, written to a new private file at `path`; the orientation of each page.

    The dossier's documents go to files, so that neither the build's own process nor the
    pool's pipes carry them (a 100,000-row dossier is ~26 MB of chunks).
    """
    rendered = render_html(html, variant=variant, tags=tags)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(rendered.pdf)
    return rendered.landscape


def _render(html: str, variant: str | None, tags: bool = False) -> Rendered:
    if tags:
        _install_cell_tags()
    document = _html_class()(string=html, base_url=ASSETS_URL, url_fetcher=url_fetcher()).render()
    options: dict[str, Any] = {"pdf_tags": True} if tags else {}
    if variant:
        options["pdf_variant"] = variant
    pdf = document.write_pdf(**options)
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


def load_fonts() -> None:
    """Load fontconfig's configuration and the dossier's fonts (a one-line document)."""
    render_html("<p style=\"font-family: 'Noto Sans'\">·</p>", variant=None)


def prepare_process() -> None:
    """Each pool process, as it starts: load the fonts before the first document arrives.

    Then `gc.freeze()`: the modules and caches loaded so far live as long as the process,
    so the collection after each document need not scan them again.
    """
    load_fonts()
    gc.freeze()
