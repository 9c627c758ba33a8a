"""Joining the rendered documents into one dossier PDF with pypdf (in a pool process).

The chunks are concatenated, and what is printed on every page is laid over the pages
as form XObjects, so nothing is rendered twice: the running head and list digest (one
small document with one page per page size, shared by every page of that size) and
"page X of Y" (documents of one label per page). The canonical list is attached, and
its digest written into the metadata under `LIST_DIGEST_KEY`, which verification reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

CANONICAL_LIST_NAME = "canonical-list.txt"
LIST_DIGEST_KEY = "/PetitionListSHA256"
MARKS_XOBJECT = "/PetitionPageMarks"
LABEL_XOBJECT = "/PetitionPageLabel"


@dataclass(frozen=True)
class JoinSpec:
    title: str
    author: str
    language: str
    list_sha256: str
    canonical_list: bytes


def join_files(chunks: Sequence[str], marks: str, labels: Sequence[str], spec: JoinSpec, out: str) -> None:
    """Concatenate the chunks, lay the marks and labels over every page, attach the list.

    All are PDF files: `marks` has one page per page size (portrait, then landscape);
    `labels` hold one page per page of the chunks, in order. The dossier is written to
    `out`, a new private file.
    """
    import datetime as dt
    import os

    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import (
        ArrayObject,
        DecodedStreamObject,
        DictionaryObject,
        NameObject,
        NumberObject,
        TextStringObject,
    )

    writer = PdfWriter(clone_from=PdfReader(chunks[0]))
    for path in chunks[1:]:
        reader = PdfReader(path)
        before = len(writer.pages)
        writer.append(reader, import_outline=False)
        _merge_structure(writer, reader, before)

    label_pages = [page for path in labels for page in PdfReader(path).pages]
    if len(label_pages) != len(writer.pages):
        raise RuntimeError(f"{len(label_pages)} page labels for {len(writer.pages)} pages")
    shared = {_landscape(page): writer._add_object(_form(writer, page)) for page in PdfReader(marks).pages}
    opening = writer._add_object(_stream(DecodedStreamObject, b"q\n"))
    # The running head and "page X of Y" are artifacts: outside the structure tree.
    closing = writer._add_object(
        _stream(
            DecodedStreamObject,
            b"\nQ\n/Artifact BMC q " + MARKS_XOBJECT.encode() + b" Do Q q " + LABEL_XOBJECT.encode() + b" Do Q EMC\n",
        )
    )
    for page, label in zip(writer.pages, label_pages, strict=True):
        landscape = _landscape(page)
        if landscape != _landscape(label) or landscape not in shared:
            raise RuntimeError("a page label or page mark does not fit its page")
        # Pages may share one resource dictionary: give each page its own shallow copy.
        resources = (
            DictionaryObject(cast(DictionaryObject, page["/Resources"].get_object()))
            if "/Resources" in page
            else DictionaryObject()
        )
        xobjects = (
            DictionaryObject(cast(DictionaryObject, resources["/XObject"].get_object()))
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
    attachment.description = TextStringObject("The canonical list whose SHA-256 is printed on the cover")
    attachment.modification_date = dt.datetime.now(dt.UTC)
    attachment.size = NumberObject(len(spec.canonical_list))
    writer._root_object[NameObject("/AF")] = ArrayObject([writer._add_object(attachment.pdf_object)])
    writer._root_object[NameObject("/Lang")] = TextStringObject(spec.language)

    writer.add_metadata(
        {
            "/Title": spec.title,
            "/Author": spec.author,
            "/Creator": "petition",
            LIST_DIGEST_KEY: spec.list_sha256,
        }
    )
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        writer.write(fh)


def _merge_structure(writer: Any, reader: Any, first_page: int) -> None:
    """Append a tagged chunk's structure tree to the dossier's, which is the first document's.

    weasyprint writes one `/Document` element under the `/StructTreeRoot` and a flat parent
    tree (`/Nums`) keyed by each page's `/StructParents`. pypdf's `append` copies the pages
    (it maps the chunk's page objects to the copies) but drops `/StructParents` and the tree:
    the chunk's elements are cloned under the dossier's `/Document` (their `/Pg` and marked
    content references then point at the copied pages), its parent tree entries are added
    with their keys moved past the dossier's, and the pages get their keys back, moved alike.
    An untagged chunk, or an untagged first document, is left as it is.
    """
    from pypdf.generic import ArrayObject, IndirectObject, NameObject, NumberObject

    root = writer._root_object
    source_root = reader.trailer["/Root"]
    if "/StructTreeRoot" not in root or "/StructTreeRoot" not in source_root:
        return
    tree = root["/StructTreeRoot"].get_object()
    source_tree = source_root["/StructTreeRoot"].get_object()
    nums = tree["/ParentTree"].get_object()["/Nums"]
    offset = max((int(nums[i]) for i in range(0, len(nums), 2)), default=-1) + 1
    document_ref = tree["/K"][0]
    document = document_ref.get_object()
    source_document_ref = source_tree["/K"][0]
    # The chunk's /Document is the dossier's: its elements' /P then points there when cloned.
    translated = writer._id_translated.setdefault(id(reader), {"PreventGC": reader})
    translated[source_document_ref.idnum] = document_ref.idnum
    kids = document["/K"]
    if not isinstance(kids, ArrayObject):
        kids = ArrayObject([kids])
        document[NameObject("/K")] = kids
    source_kids = source_document_ref.get_object()["/K"]
    for kid in source_kids if isinstance(source_kids, ArrayObject) else [source_kids]:
        clone = kid.clone(writer)
        kids.append(clone.indirect_reference if not isinstance(clone, IndirectObject) else clone)
    source_nums = source_tree["/ParentTree"].get_object()["/Nums"]
    for i in range(0, len(source_nums), 2):
        nums.append(NumberObject(int(source_nums[i]) + offset))
        nums.append(source_nums[i + 1].clone(writer))
    for page, source_page in zip(writer.pages[first_page:], reader.pages, strict=True):
        if "/StructParents" in source_page:
            page[NameObject("/StructParents")] = NumberObject(int(source_page["/StructParents"]) + offset)


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
