"""The renderer on its own: chunks, page sizes, page marks and labels, right-to-left cells."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
from weasyprint import HTML

from petition.dossiers import typesetting
from petition.dossiers.content import AppealText, DossierContent, Signatory, canonical_list
from petition.dossiers.presentation import Presentation, direction
from petition.dossiers.render import label_runs, render_pdf
from petition.i18n import translations
from tests.dossiers.factories import run

LATIN = [f"Friedensgruppe {n}" for n in ("Aachen", "Bonn", "Celle", "Dessau", "Erfurt", "Fulda")]
ARABIC = "جمعية الحرية العالمية"
HEBREW = "ארגון שלום ישראלי"


def dossier_content(names: list[str]) -> DossierContent:
    rows = tuple(
        Signatory(
            name=name,
            city="Köln",
            organisation_type="peace",
            website=f"https://org{i}.example.org",
            endorsed_on=dt.date(2026, 3, 14),
        )
        for i, name in enumerate(names)
    )
    data = canonical_list(appeal_slug="demo", country="DE", signatories=rows, anonymous_count=3)
    return DossierContent(
        appeal_id=1,
        appeal_slug="demo",
        country="DE",
        language="de",
        texts=(
            AppealText("de", "Schutz für Deserteure", "Bundestag", "Ein **Aufruf**."),
            AppealText("en", "Protect deserters", "Bundestag", "An **appeal**."),
        ),
        signatories=rows,
        anonymous_count=3,
        generated_at=dt.datetime(2026, 3, 14, 12, 0, tzinfo=dt.UTC),
        canonical_list=data,
        list_sha256=hashlib.sha256(data).hexdigest(),
    )


def page_sizes(path: Path, pages: int) -> list[tuple[float, float]]:
    info = run("pdfinfo", "-f", "1", "-l", str(pages), path)
    return [(float(w), float(h)) for w, h in re.findall(r"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+)", info)]


def page_text(path: Path, page: int) -> str:
    text = run("pdftotext", "-f", str(page), "-l", str(page), "-enc", "UTF-8", path, "-")
    return re.sub(r"\s+", " ", text)


@pytest.mark.asyncio
async def test_page_x_of_y_runs_across_chunks_and_label_pieces(tmp_path: Path) -> None:
    content = dossier_content([*LATIN, ARABIC, HEBREW])
    presentation = Presentation("https://petition.example/verify", "AB:CD")
    # Three rows a chunk (three chunks, each on fresh pages) and three label documents,
    # so that label pieces begin and end inside the cover and inside the list.
    pdf, pages = await render_pdf(content, presentation, chunk_rows=3, label_pieces=3)
    path = tmp_path / "dossier.pdf"
    path.write_bytes(pdf)

    assert int(re.search(r"Pages:\s+(\d+)", run("pdfinfo", path)).group(1)) == pages
    sizes = page_sizes(path, pages)
    assert len(sizes) == pages
    portrait = [n for n, (w, h) in enumerate(sizes, start=1) if w < h]
    landscape = [n for n, (w, h) in enumerate(sizes, start=1) if w > h]
    # The cover and appeal texts in portrait, then the list across the page, a chunk a page.
    assert portrait == list(range(1, len(portrait) + 1)) and len(portrait) >= 2
    assert len(landscape) == 3 and landscape[-1] == pages

    german = translations("de")
    label = german.gettext("page %(page)s of %(pages)s")
    for n in range(1, pages + 1):
        text = page_text(path, n)
        assert text.count(label % {"page": n, "pages": pages}) == 1, (n, text)
        # The list digest once, in the cover's verification box; no page repeats it.
        assert (content.list_sha256 in text) == (n == 1), n
        assert f"{german.gettext('Dossier')} · Deutschland · Schutz für Deserteure" in text, n
    everything = " ".join(page_text(path, n) for n in landscape)
    for name in LATIN:
        assert name in everything
    anonymous = german.ngettext(
        "and %(num)s organisation that asked not to be named",
        "and %(num)s organisations that asked not to be named",
        3,
    ) % {"num": 3}
    assert anonymous in page_text(path, pages)


@pytest.mark.asyncio
async def test_right_to_left_names_are_set_from_the_right_of_their_cell(tmp_path: Path) -> None:
    content = dossier_content([LATIN[0], ARABIC, HEBREW])
    pdf, pages = await render_pdf(content, Presentation("https://petition.example/verify", "AB"))
    path = tmp_path / "dossier.pdf"
    path.write_bytes(pdf)
    words = re.findall(
        r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">([^<]+)</word>',
        run("pdftotext", "-f", str(pages), "-l", str(pages), "-bbox", path, "-"),
    )
    left_edge = min(float(x0) for x0, _x1, word in words if word == "Friedensgruppe")
    # The name column is 38 % of 265 mm from the 16 mm margin: its right edge near 328 pt.
    for name in (ARABIC, HEBREW):
        # pdftotext may give right-to-left words in visual order: either way round counts.
        parts = set(name.split()) | {w[::-1] for w in name.split()}
        right_edge = max(float(x1) for _x0, x1, word in words if word in parts)
        assert 300 < right_edge < 330, (name, right_edge)
    assert left_edge < 60


def test_direction_follows_the_first_strong_character() -> None:
    assert direction(ARABIC) == ' dir="rtl"'
    assert direction(f"12 {HEBREW}") == ' dir="rtl"'
    assert direction(f"Verein {ARABIC}") == ""
    assert direction("") == "" and direction("2026") == ""


def test_label_runs_cover_every_page_once() -> None:
    assert label_runs(7, 3) == [range(1, 3), range(3, 6), range(6, 8)]
    assert label_runs(2, 5) == [range(1, 2), range(2, 3)]
    assert label_runs(900, 2) == [range(1, 451), range(451, 901)]


def test_the_renderer_replaces_weasyprints_user_agent_stylesheet(tmp_path: Path) -> None:
    # weasyprint asks HTML._ua_stylesheets() for its user-agent sheets (no public API):
    # if a weasyprint release renames it, dossiers would silently lose the fast cascade.
    assert callable(getattr(HTML, "_ua_stylesheets", None))
    document_class = typesetting._html_class()
    assert issubclass(document_class, HTML)
    assert len(document_class(string="<p>x</p>")._ua_stylesheets()) == 1
    # What the dossier's markup needs from a user-agent sheet still holds with ours.
    rendered = typesetting.render_html(
        "<html><head><title>Kopf</title></head><body><h1>Titel</h1>"
        "<ul><li>Punkt</li></ul><p>Absatz <strong>fett</strong></p></body></html>",
        variant=None,
    )
    assert rendered.pages == 1 and rendered.landscape == (False,)
    path = tmp_path / "ua.pdf"
    path.write_bytes(rendered.pdf)
    text = page_text(path, 1)
    assert "Kopf" not in text
    assert "Titel" in text and "• Punkt" in text and "Absatz fett" in text


def test_weasyprint_runs_on_a_stack_chunk_of_its_own() -> None:
    # CPython 3.11 mmaps and munmaps a 16 KiB stack chunk each time a call crosses a
    # chunk boundary: the render is called from a frame that makes the interpreter give
    # it 1 MiB at once (typesetting.on_roomy_stack explains the measurements).
    assert typesetting.on_roomy_stack.__code__.co_stacksize >= 1 << 16
    assert typesetting.on_roomy_stack(divmod, 7, 2) == (3, 1)


def test_a_tagged_cell_holds_its_text_without_a_span_for_each_text(tmp_path: Path) -> None:
    # typesetting wraps weasyprint's `add_tags` (no public hook) to lift each cell's lone
    # text span into the cell: if weasyprint renames or stops calling it, the list's
    # chunks silently go back to an element more for every cell (docs/benchmarks.md).
    import weasyprint.pdf

    from tests.dossiers import pdf_ua

    assert callable(getattr(weasyprint.pdf, "add_tags", None))
    rows = "".join(
        f'<tr><td>Verein {i}<br><span class="proof">bestätigt</span></td><td dir="rtl">תל אביב</td></tr>'
        for i in range(3)
    )
    rendered = typesetting.render_html(
        '<html lang="de"><head><title>Liste</title></head><body><h1>Liste</h1><table>'
        f"<thead><tr><th>Name</th><th>Stadt</th></tr></thead><tbody>{rows}</tbody></table></body></html>",
        variant=None,
        tags=True,
    )
    assert getattr(weasyprint.pdf.add_tags, "weasyprint_add_tags", None) is not None
    path = tmp_path / "cells.pdf"
    path.write_bytes(rendered.pdf)
    from pypdf import PdfReader

    reader = PdfReader(path)
    tree = reader.trailer["/Root"]["/StructTreeRoot"].get_object()
    cells = [element for _, element in pdf_ua.elements(tree["/K"]) if element["/S"] in ("/TH", "/TD")]
    assert len(cells) == 2 + 3 * 2
    for cell in cells:
        kids = cell["/K"] if isinstance(cell["/K"], list) else [cell["/K"]]
        # The cell's own text is a marked-content id of the cell; the proof line, a span
        # with attributes of its own, keeps its element.
        assert isinstance(kids[0], int), cell
    # Each lifted MCID is found again through the parent tree, at its cell, on its page.
    assert pdf_ua._parent_tree(reader, reader.trailer["/Root"].raw_get("/StructTreeRoot")) == []
    text = page_text(path, 1)
    assert "Verein 2" in text and "bestätigt" in text


def _joining_processes() -> set[int]:
    """This process's children outside the render pool: the joining processes of builds."""
    import multiprocessing

    from petition.dossiers.render_pool import pool

    pooled = {process.pid for process in (getattr(pool(), "_processes", None) or {}).values()}
    return {child.pid for child in multiprocessing.active_children() if child.pid not in pooled}


@pytest.mark.asyncio
async def test_a_build_cut_short_leaves_no_joining_process(tmp_path: Path) -> None:
    # The join runs beside the pool in a process of its own (render.render_pdf_file). A
    # worker that stops mid-build (a restart, a lease lost) cancels the build: that process
    # must go with it, or every cut-short build would leave one behind holding its memory.
    import asyncio

    from petition.dossiers.render import render_pdf_file

    content = dossier_content([*LATIN, ARABIC, HEBREW] * 4)
    presentation = Presentation("https://petition.example/verify", "AB:CD")
    before = _joining_processes()
    joined_some = asyncio.Event()

    def progress(done: int, total: int) -> None:
        if done >= 3:  # the marks, the cover and a chunk: the join is under way
            joined_some.set()

    build = asyncio.create_task(
        render_pdf_file(content, presentation, tmp_path / "cut.pdf", workdir=tmp_path, progress=progress, chunk_rows=2)
    )
    await asyncio.wait_for(joined_some.wait(), 120)
    assert _joining_processes() - before, "the build joins in a process of its own"
    build.cancel()
    with pytest.raises(asyncio.CancelledError):
        await build
    assert _joining_processes() - before == set()
    assert not (tmp_path / "cut.pdf").exists()

    # A complete build afterwards is whole, and leaves none either.
    pdf, pages = await render_pdf(content, presentation, chunk_rows=2)
    assert pages > 12 and pdf.startswith(b"%PDF-")
    assert _joining_processes() - before == set()


@pytest.mark.asyncio
async def test_a_document_the_join_cannot_read_fails_the_build_and_leaves_no_process(tmp_path: Path) -> None:
    # A chunk that comes out of the pool unreadable (a full disk, a truncated file) fails the
    # build with the join's error, not a half-written dossier, and the joining process ends.
    from petition.dossiers.render import render_pdf_file

    broken = tmp_path / "chunk-00001.pdf"

    def progress(done: int, total: int) -> None:
        # Called as each document is rendered, before the join is given it.
        if broken.exists() and broken.stat().st_size > 200:
            broken.write_bytes(broken.read_bytes()[:200])

    content = dossier_content([*LATIN, ARABIC, HEBREW])
    presentation = Presentation("https://petition.example/verify", "AB:CD")
    before = _joining_processes()
    with pytest.raises(Exception, match="(?i)pdf|stream|EOF|xref|trailer"):
        await render_pdf_file(
            content, presentation, tmp_path / "broken.pdf", workdir=tmp_path, progress=progress, chunk_rows=3
        )
    assert broken.stat().st_size == 200
    assert not (tmp_path / "broken.pdf").exists()
    assert _joining_processes() - before == set()
