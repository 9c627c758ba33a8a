"""The dossier as a document to hand over (issue 16): cover, covering letter, labelled text,
a dense list, names isolated for bidi, tags, and the public log's checkpoint (issue 17)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
from pypdf import PdfReader

from petition.dossiers.content import AppealText, DossierContent, LogCheckpoint, Signatory, canonical_list
from petition.dossiers.presentation import (
    GROUP_MIN_ROWS,
    Presentation,
    Sender,
    by_city,
    city_key,
    request_of,
    running_title,
)
from petition.dossiers.render import render_pdf
from petition.i18n import translations
from tests.dossiers import pdf_ua
from tests.dossiers.factories import run

ARABIC = "جمعية الحرية"
CHECKPOINT = LogCheckpoint(1234, "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=")
SENDER = Sender(
    "Friedensnetz e.V.", "Musterstraße 1\n10115 Berlin", "kontakt@friedensnetz.example", "dsb@friedensnetz.example"
)
BODY = (
    "Wir fordern den Bundestag auf, **Kriegsdienstverweigerern** Schutz und Asyl zu gewähren.\n\n"
    "Ein zweiter Absatz, den der Brief nicht zitiert."
)
de = translations("de")
#: A city for each organisation: too scattered to group by (presentation.by_city).
SCATTERED = [f"Ort {i:03d}" for i in range(200)]


def content(
    rows: int = 6, *, checkpoint: LogCheckpoint | None = CHECKPOINT, cities: list[str] | None = None
) -> DossierContent:
    signatories = tuple(
        Signatory(
            name=f"Friedensgruppe {i:04d}",
            city=(cities or ["Köln"])[i % len(cities or ["Köln"])],
            organisation_type="peace",
            website=f"https://org{i}.example.org",
            endorsed_on=dt.date(2026, 3, 14),
        )
        for i in range(rows)
    )
    data = canonical_list(
        appeal_slug="demo", country="DE", signatories=signatories, anonymous_count=3, checkpoint=checkpoint
    )
    return DossierContent(
        appeal_id=1,
        appeal_slug="demo",
        country="DE",
        language="de",
        texts=(
            AppealText("de", "Schutz für Deserteure", "Deutscher Bundestag", BODY),
            AppealText("en", "Protect deserters", "German Bundestag", "We call on the Bundestag."),
        ),
        signatories=signatories,
        anonymous_count=3,
        generated_at=dt.datetime(2026, 3, 14, 12, 0, tzinfo=dt.UTC),
        canonical_list=data,
        list_sha256=hashlib.sha256(data).hexdigest(),
        checkpoint=checkpoint,
        original_language="de",
    )


def presentation(**changes: object) -> Presentation:
    base = Presentation(
        "https://petition.example/verify?digest=00",
        "AB:CD",
        author="Friedensnetz e.V.",
        sender=SENDER,
        initiators=(ARABIC, "350.org"),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


async def rendered(tmp_path: Path, c: DossierContent, p: Presentation, **kw: object) -> tuple[Path, int]:
    pdf, pages = await render_pdf(c, p, **kw)  # type: ignore[arg-type]
    path = tmp_path / "dossier.pdf"
    path.write_bytes(pdf)
    return path, pages


def text(path: Path, page: int, *layout: str) -> str:
    raw = run("pdftotext", *layout, "-f", str(page), "-l", str(page), "-enc", "UTF-8", path, "-")
    return re.sub("[\u202a-\u202e]", "", raw)  # the embedding marks pdftotext adds around RTL runs


def flat(s: str) -> str:
    return re.sub(r"\s+", " ", s)


@pytest.mark.asyncio
async def test_a_covering_letter_follows_the_cover_and_says_who_asks_whom_for_what(tmp_path: Path) -> None:
    path, _pages = await rendered(tmp_path, content(), presentation())
    letter = flat(text(path, 2))
    for expected in (
        "Friedensnetz e.V.",
        "Musterstraße 1",
        "10115 Berlin",
        "kontakt@friedensnetz.example",
        "dsb@friedensnetz.example",
        f"{de.gettext('To:')} Deutscher Bundestag",
        f"{de.gettext('Subject:')} Schutz für Deserteure",
        de.gettext("The appeal asks:"),
        # The request is the appeal text's first paragraph, not the second.
        "Wir fordern den Bundestag auf, Kriegsdienstverweigerern Schutz und Asyl zu gewähren.",
        de.ngettext(
            "%(num)s organisation from %(country)s has endorsed the appeal.",
            "%(num)s organisations from %(country)s have endorsed the appeal.",
            9,
        )
        % {"num": 9, "country": "Deutschland"},
        de.gettext("Contact:") + " kontakt@friedensnetz.example",
    ):
        assert expected in letter, (expected, letter)
    assert "zweiter Absatz" not in letter
    # The initiators, an Arabic name and one that starts with digits, each isolated: in order.
    assert f"{ARABIC}, 350.org" in letter, letter

    cover = flat(text(path, 1))
    for expected in (
        "Schutz für Deserteure",
        "Deutscher Bundestag",
        "Deutschland (DE)",
        "Friedensnetz e.V.",
        "14. März 2026",
    ):
        assert expected in cover, expected
    assert de.gettext("How to verify this dossier") in cover
    # The checkpoint of the public log at build time, on the cover (issue 17).
    assert (
        de.gettext("Public log checkpoint: size %(size)s, root %(root)s")
        % {
            "size": 1234,
            "root": CHECKPOINT.root,
        }
        in cover
    )
    # The time of day is gone from the cover; the date stays.
    assert "12:00" not in cover

    # The appeal's text, labelled as the original (German here) and the translation.
    texts = flat(" ".join(text(path, n) for n in (3, 4)))
    assert (
        de.gettext("The appeal, as endorsed (original text, %(language)s)") % {"language": "Deutsch"}
    ).upper() in texts
    assert (
        de.gettext("The appeal, as endorsed (translation, %(language)s)") % {"language": "Englisch"}
    ).upper() in texts


@pytest.mark.asyncio
async def test_without_operator_settings_the_letter_names_no_sender(tmp_path: Path) -> None:
    path, _pages = await rendered(tmp_path, content(), presentation(sender=Sender(), initiators=()))
    letter = flat(text(path, 2))
    cover = flat(text(path, 1))
    assert de.gettext("Sent by") not in cover
    assert de.gettext("Contact:") not in letter and de.gettext("Questions about personal data:") not in letter
    assert "Friedensnetz" not in letter + cover and "@" not in letter
    # It still says to whom and what.
    assert f"{de.gettext('Subject:')} Schutz für Deserteure" in letter and "Wir fordern den Bundestag auf" in letter


@pytest.mark.asyncio
async def test_the_list_digest_is_printed_once_and_the_running_head_fits(tmp_path: Path) -> None:
    long_title = "Schutz und Asyl für Deserteure und Kriegsdienstverweigerer aus Russland, Belarus und der Ukraine"
    c = content(rows=5)
    c = dataclasses.replace(c, texts=(dataclasses.replace(c.texts[0], title=long_title), *c.texts[1:]))
    path, pages = await rendered(tmp_path, c, presentation())
    every = [flat(text(path, n)) for n in range(1, pages + 1)]
    assert [c.list_sha256 in page for page in every] == [True] + [False] * (pages - 1)
    head = f"{de.gettext('Dossier')} · Deutschland · {running_title(long_title)}"
    assert running_title(long_title).endswith("…") and len(running_title(long_title)) <= 61
    for n, page in enumerate(every, start=1):
        assert head in page, n
        assert de.gettext("page %(page)s of %(pages)s") % {"page": n, "pages": pages} in page


def test_the_request_is_the_first_paragraph_cut_at_a_word() -> None:
    assert request_of("# Heading\n\nFirst **paragraph**.\n\nSecond.") == "First **paragraph**."
    long = request_of("wort " * 400)
    assert long.endswith(" …") and len(long) <= 702


@pytest.mark.asyncio
async def test_the_list_is_dense_and_names_keep_their_order_beside_their_city(tmp_path: Path) -> None:
    c = content(rows=110, cities=SCATTERED)
    rows = (*c.signatories[:-1], dataclasses.replace(c.signatories[-1], name=f"{ARABIC} 2024", city="Berlin"))
    c = dataclasses.replace(c, signatories=rows)
    path, pages = await rendered(tmp_path, c, presentation())
    landscape = [
        n
        for n, (w, h) in enumerate(
            re.findall(r"size:\s+([\d.]+) x ([\d.]+)", run("pdfinfo", "-f", "1", "-l", str(pages), path)), 1
        )
        if float(w) > float(h)
    ]
    # 110 rows: on three pages now (~41 rows a page; there were ~28, so four pages).
    assert len(landscape) <= 3, landscape
    first = text(path, landscape[0])
    assert len(re.findall(r"Friedensgruppe \d{4}", first)) >= 34
    # The Arabic name and its Latin city: the name (in logical order) before the city, on one line.
    line = next(ln for ln in text(path, landscape[-1], "-layout").splitlines() if ARABIC in ln)
    assert re.search(ARABIC + r"\s+2024\s+Berlin\s", line) or re.search(ARABIC + r".*Berlin", line), line
    assert line.index(ARABIC) < line.index("Berlin")


@pytest.mark.asyncio
async def test_the_joined_dossier_is_tagged_with_its_language(tmp_path: Path) -> None:
    path, _pages = await rendered(tmp_path, content(rows=30), presentation(), chunk_rows=10)
    reader = PdfReader(path)
    root = reader.trailer["/Root"]
    assert root["/MarkInfo"]["/Marked"] is True or root["/MarkInfo"]["/Marked"] == True  # noqa: E712
    assert "/StructTreeRoot" in root
    assert root["/Lang"] == "de"
    # The structure tree holds the cover's heading and the letter's paragraphs.
    kinds = set()

    def walk(node: object, depth: int = 0) -> None:
        obj = node.get_object()  # type: ignore[attr-defined]
        if isinstance(obj, dict) and "/S" in obj:
            kinds.add(str(obj["/S"]))
        kids = obj.get("/K") if isinstance(obj, dict) else None
        if kids is None or depth > 50:
            return
        for kid in kids if isinstance(kids, list) else [kids]:
            if hasattr(kid, "get_object") and isinstance(kid.get_object(), dict):
                walk(kid, depth + 1)

    walk(root["/StructTreeRoot"])
    assert {"/H1", "/P"} <= kinds, kinds


def test_the_checkpoint_is_a_header_line_of_the_canonical_list_only_when_there_is_one() -> None:
    with_checkpoint = content(rows=2).canonical_list
    without = content(rows=2, checkpoint=None).canonical_list
    head = with_checkpoint.split(b"\n")[:6]
    assert head[5] == f"checkpoint\t1234\t{CHECKPOINT.root}".encode()
    assert b"checkpoint" not in without
    assert with_checkpoint.replace(head[5] + b"\n", b"") == without


@pytest.mark.asyncio
async def test_the_list_chunks_structure_trees_are_merged_into_one(tmp_path: Path) -> None:
    path, pages = await rendered(tmp_path, content(rows=30, cities=SCATTERED), presentation(), chunk_rows=10)
    reader = PdfReader(path)
    tree = reader.trailer["/Root"]["/StructTreeRoot"]
    page_refs = {page.indirect_reference.idnum: n for n, page in enumerate(reader.pages)}
    cells: list[str] = []
    pages_seen: set[int] = set()

    def walk(node: object) -> None:
        obj = node.get_object()  # type: ignore[attr-defined]
        if not isinstance(obj, dict):
            return
        if "/Pg" in obj:
            ref = obj.raw_get("/Pg")  # type: ignore[attr-defined]
            assert ref.idnum in page_refs  # every element on a page of this file
            pages_seen.add(page_refs[ref.idnum])
        if obj.get("/S") == "/TD":
            cells.append(str(obj["/S"]))
        kids = obj.get("/K")
        for kid in kids if isinstance(kids, list) else [kids] if kids is not None else []:
            if hasattr(kid, "get_object"):
                walk(kid)

    [document] = tree["/K"]
    walk(document)
    assert len(cells) >= 30 * 5  # every row of the three chunks, five cells each
    assert pages_seen == set(range(pages))  # the cover's pages and every list page
    # One parent tree, a key per page, and the pages' keys unique.
    nums = tree["/ParentTree"]["/Nums"]
    keys = [int(nums[i]) for i in range(0, len(nums), 2)]
    assert sorted(keys) == sorted({page["/StructParents"] for page in reader.pages}) and len(set(keys)) == len(keys)


def test_only_a_list_whose_cities_repeat_is_grouped() -> None:
    few = content(rows=GROUP_MIN_ROWS, cities=["Köln", "Berlin"]).signatories
    assert by_city(few) is not None
    assert by_city(few[:-1]) is None  # too short to need it
    scattered = content(rows=60, cities=SCATTERED[:21]).signatories  # under three a city
    assert by_city(scattered) is None
    # Spelled apart, one city; no city last, each city's names in the order they had.
    rows = content(rows=30, cities=["Köln", "KÖLN ", "", "Aachen"]).signatories
    ordered = by_city(rows)
    assert ordered is not None
    assert [city_key(r.city) for r in ordered] == ["aachen"] * 7 + ["köln"] * 16 + [""] * 7
    assert [r.name for r in ordered if r.city == "Aachen"] == sorted(r.name for r in rows if r.city == "Aachen")


def _list_text(path: Path, pages: int) -> str:
    return "\n".join(text(path, n, "-layout") for n in range(5, pages + 1))


@pytest.mark.asyncio
async def test_a_long_list_is_grouped_by_city_each_under_its_heading(tmp_path: Path) -> None:
    """Where cities repeat, a parliamentarian finds their constituency's organisations together:
    a heading for each city (with its count, said again where a city goes on past a chunk), the
    names in order under it; spellings of one city together, an Arabic city isolated; and the
    document still meets PDF/UA-1's rules, each cell's headers its own table's."""
    # "köln " begins the second chunk (row 27 of the city order, Köln's 12th): its heading still says "Köln".
    cities = ["Köln", "Berlin", "Leipzig", "köln ", "جدة", ""]
    c = content(rows=90, cities=cities)
    path, pages = await rendered(tmp_path, c, presentation(), chunk_rows=26)
    listing = _list_text(path, pages)
    organisations = de.ngettext("%(num)s organisation", "%(num)s organisations", 30)
    headings = [
        f"Berlin · {de.ngettext('%(num)s organisation', '%(num)s organisations', 15) % {'num': 15}}",
        f"Köln · {organisations % {'num': 30}}",
        f"Leipzig · {de.ngettext('%(num)s organisation', '%(num)s organisations', 15) % {'num': 15}}",
    ]
    places = [listing.index(h) for h in headings]
    assert places == sorted(places), listing[:3000]
    assert de.gettext("City not given") in listing and "جدة" in listing
    assert listing.index("جدة") > places[-1] and listing.index(de.gettext("City not given")) > listing.index("جدة")
    # Each name under its own city's heading: Berlin's are rows 1, 7, 13, … and Köln's 0, 3, 6, ….
    berlin = listing[places[0] : places[1]]
    assert re.findall(r"Friedensgruppe (\d{4})", berlin) == [f"{i:04d}" for i in range(1, 90, 6)]
    koeln = listing[places[1] : places[2]]
    assert sorted(re.findall(r"Friedensgruppe (\d{4})", koeln)) == [f"{i:04d}" for i in range(90) if i % 3 == 0]
    # Köln goes on past the first chunk of 26 rows: said so where it does.
    assert f"{headings[1]} {de.gettext('(continued)')}" in re.sub(r" +", " ", koeln)
    # The summary says how the list is ordered; the city is the heading, not a column.
    summary = de.ngettext(
        "%(num)s organisation is named below, by city, in alphabetical order within each city.",
        "%(num)s organisations are named below, by city, in alphabetical order within each city.",
        90,
    ) % {"num": 90}
    assert summary in flat(listing)
    assert de.gettext("City") not in re.findall(r"^\s*(\w+)", listing, re.M)

    tree = PdfReader(path).trailer["/Root"]["/StructTreeRoot"]
    kinds = [str(e["/S"]) for _r, e in pdf_ua.elements(tree["/K"])]
    assert kinds.count("/H3") >= 6 and kinds.count("/Table") >= 7  # the cover's and one a city and chunk
    assert pdf_ua.failures(path) == []


@pytest.mark.asyncio
async def test_a_list_of_scattered_cities_stays_one_table_with_a_city_column(tmp_path: Path) -> None:
    path, pages = await rendered(tmp_path, content(rows=40, cities=SCATTERED), presentation())
    listing = _list_text(path, pages)
    assert de.gettext("City") in listing and "Ort 007" in listing
    assert de.gettext("(continued)") not in listing
    tree = PdfReader(path).trailer["/Root"]["/StructTreeRoot"]
    assert "/H3" not in [str(e["/S"]) for _r, e in pdf_ua.elements(tree["/K"])]
