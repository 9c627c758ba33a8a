"""Joining the rendered documents into one dossier PDF with pypdf (in a process of the build's own).

The chunks are concatenated, and what is printed on every page is laid over the pages
as form XObjects, so nothing is rendered twice: the running head and list digest (one
small document with one page per page size, shared by every page of that size) and
"page X of Y" (documents of one label per page). The canonical list is attached, and
its digest written into the metadata under `LIST_DIGEST_KEY`, which verification reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
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
    import os

    joiner = Joiner(os.path.dirname(os.path.abspath(out)))
    try:
        for path in chunks:
            joiner.add(path)
        joiner.finish(marks, labels, spec, out)
    finally:
        joiner.close()


class Joiner:
    """The dossier put together one document at a time, as the documents are rendered.

    `add` each document in order (the first is the cover: its catalog, outline and structure
    tree become the dossier's), then `finish` once the page labels exist. The build feeds a
    joiner in a process of its own while the pool still renders the chunks after
    (`render.render_pdf_file`), so the join's work is mostly done when the last chunk is.
    """

    def __init__(self, directory: str) -> None:
        self.spill = _Spill(directory)
        self.writer: Any = None
        self.ids: dict[str, Any] = {}  # the structure elements' IDs, for the /IDTree
        self.documents = 0

    def add(self, path: str) -> int:
        """Append one rendered document; the dossier's page count so far."""
        from pypdf import PdfReader, PdfWriter
        from pypdf.generic import DictionaryObject

        if self.writer is None:
            self.writer = writer = PdfWriter(clone_from=PdfReader(path))
            if "/StructTreeRoot" in writer._root_object:
                _index_tables(
                    cast(DictionaryObject, writer._root_object["/StructTreeRoot"].get_object())["/K"], "c0-", self.ids
                )
        else:
            writer = self.writer
            reader = PdfReader(path)
            before = len(writer.pages)
            writer.append(reader, import_outline=False)
            _merge_structure(writer, reader, before, f"c{self.documents}-", self.ids, self.spill)
            # Nothing more is copied from this chunk: drop what pypdf keeps to copy more (the
            # reader) and the objects the reader parsed, which point back at it.
            writer._id_translated.pop(id(reader), None)
            if not writer._unresolved_links:
                # pypdf's `append` leaves each copied page pointing at its source page
                # (`original_page`), and maps one to the other (`_merged_in_pages`), to patch
                # links to pages when it writes; the chunks have none, and these kept every
                # chunk's reader alive, its cross-reference tables with it (~6 MiB each).
                writer._merged_in_pages.clear()
                for i in range(before, len(writer.pages)):
                    vars(writer.pages[i]).pop("original_page", None)
            reader.resolved_objects.clear()
            del reader
        self.documents += 1
        return len(writer.pages)

    def finish(self, marks: str, labels: Sequence[str], spec: JoinSpec, out: str) -> None:
        """Lay the marks and labels over every page, attach the list, write the dossier to `out`."""
        if self.writer is None:
            raise RuntimeError("a dossier of no documents")
        _finish(self.writer, marks, labels, spec, out, self.ids)

    def close(self) -> None:
        self.spill.file.close()
        self.writer = None


#: The joiner of the build this process serves (`begin`, `add`, `finish`): a process of its own
#: per build, which the build calls in order (render.render_pdf_file).
_current: Joiner | None = None


def begin(directory: str) -> None:
    """In a joining process: start a dossier whose temporary file goes to `directory`."""
    global _current
    if _current is not None:
        _current.close()
    _current = Joiner(directory)


def add(path: str) -> int:
    """In a joining process: append the next document; the dossier's page count so far."""
    if _current is None:
        raise RuntimeError("no dossier is being joined here")
    return _current.add(path)


def finish(marks: str, labels: Sequence[str], spec: JoinSpec, out: str) -> None:
    """In a joining process: write the dossier begun here to `out`."""
    global _current
    if _current is None:
        raise RuntimeError("no dossier is being joined here")
    try:
        _current.finish(marks, labels, spec, out)
    finally:
        _current.close()
        _current = None


def _finish(writer: Any, marks: str, labels: Sequence[str], spec: JoinSpec, out: str, ids: dict[str, Any]) -> None:
    import datetime as dt
    import os

    from pypdf import PdfReader
    from pypdf.generic import (
        ArrayObject,
        BooleanObject,
        DecodedStreamObject,
        DictionaryObject,
        NameObject,
        NumberObject,
        TextStringObject,
    )

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
    # PDF/UA-1: a viewer shows the title, not the file name; header cells are found by /ID.
    writer._root_object[NameObject("/ViewerPreferences")] = DictionaryObject(
        {NameObject("/DisplayDocTitle"): BooleanObject(True)}
    )
    if "/StructTreeRoot" in writer._root_object:
        _write_id_tree(writer, writer._root_object["/StructTreeRoot"].get_object(), ids)
    _identify_pdf_ua(writer, spec)

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


class _Serialized:
    """An object the dossier holds as its bytes, which pypdf's writer writes (`write_to_stream`)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def write_to_stream(self, stream: Any, encryption_key: Any = None) -> None:
        stream.write(self.data)


class _Spill:
    """The chunks' structure elements, serialized, in a temporary file until the dossier is written.

    As pypdf objects, the ~9 elements of each row (the row, its cells, a span for each cell's
    text) took ~50 MB a 1,000-row chunk and kept every chunk's reader alive: 6 GiB for a
    dossier of 100,000. Here each is a file offset and a length (`_Spilled`); pypdf's writer
    asks for them in the order they were written, so the file is read straight through.
    """

    def __init__(self, directory: str) -> None:
        import tempfile

        self.file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by Joiner.close
        self.end = 0
        self.position = 0

    def add(self, data: bytes) -> _Spilled:
        if self.position != self.end:
            self.file.seek(self.end)
        start = self.end
        self.file.write(data)
        self.end = self.position = start + len(data)
        return _Spilled(self, start, len(data))

    def read(self, offset: int, length: int) -> bytes:
        if self.position != offset:
            self.file.seek(offset)
        data = self.file.read(length)
        self.position = offset + len(data)
        return data


class _Spilled:
    __slots__ = ("length", "offset", "spill")

    def __init__(self, spill: _Spill, offset: int, length: int) -> None:
        self.spill, self.offset, self.length = spill, offset, length

    def write_to_stream(self, stream: Any, encryption_key: Any = None) -> None:
        stream.write(self.spill.read(self.offset, self.length))


def _merge_structure(
    writer: Any, reader: Any, first_page: int, prefix: str, ids: dict[str, Any], spill: _Spill
) -> None:
    """Append a tagged chunk's structure tree to the dossier's, which is the first document's.

    weasyprint writes one `/Document` element under the `/StructTreeRoot` and a flat parent
    tree (`/Nums`) keyed by each page's `/StructParents` (and each annotation's
    `/StructParent`). pypdf's `append` has copied the pages and their annotations, and
    dropped those keys and the tree. The chunk's elements are numbered in the dossier and
    serialized into `spill` (which pypdf's writer reads when it writes them): a reference to an element becomes
    its dossier number, to a page or annotation the number of pypdf's copy, to the chunk's
    `/Document` the dossier's. Its top elements become kids of the dossier's `/Document`, its
    parent tree's entries are added with their keys moved past the dossier's, and the pages
    and annotations get their keys back, moved alike. The chunk's table cells are fixed as
    `_index_tables` fixes them (`_fix_cell`). An untagged chunk, or an untagged first
    document, is left as it is.
    """
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, NumberObject

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
    kids = document["/K"]
    if not isinstance(kids, ArrayObject):
        kids = ArrayObject([kids])
        document[NameObject("/K")] = kids
    source_document_ref = source_tree["/K"][0]
    copied: dict[int, int] = writer._id_translated.get(id(reader), {})  # pages, annotations

    # Number every element (and marked-content or object reference) under the chunk's
    # /Document, in the order a reader meets them.
    numbers: dict[int, int] = {}
    order: list[tuple[Any, str]] = []
    stack: list[tuple[Any, str]] = []
    top = source_document_ref.get_object().get("/K")
    top_kids = list(top) if isinstance(top, ArrayObject) else [top]
    stack.extend((kid, "") for kid in reversed(top_kids))
    while stack:
        item, group = stack.pop()
        if not isinstance(item, IndirectObject):
            continue  # a marked-content identifier, or a reference given in place
        if item.idnum in numbers:
            continue
        element = item.get_object()
        if not isinstance(element, DictionaryObject):
            continue
        writer._objects.append(None)
        numbers[item.idnum] = len(writer._objects)
        order.append((item, group))
        kind = element.get("/S")
        if kind in ("/THead", "/TBody", "/TFoot"):
            group = kind
        children = element.get("/K")
        if children is not None:
            listed = list(children) if isinstance(children, ArrayObject) else [children]
            stack.extend((kid, group) for kid in reversed(listed))

    def number(idnum: int) -> int:
        if idnum == source_document_ref.idnum:
            return int(document_ref.idnum)
        found = numbers.get(idnum, copied.get(idnum))
        if found is None:
            raise RuntimeError(f"a structure element of {prefix[:-1]} names object {idnum}, not copied")
        return found

    for item, group in order:
        element = item.get_object()
        if element.get("/S") in ("/TH", "/TD"):
            key = _fix_cell(element, group, prefix)
            if key is not None:
                ids[key] = IndirectObject(numbers[item.idnum], 0, writer)
        writer._objects[numbers[item.idnum] - 1] = spill.add(_serialize(element, number))
    kids.extend(IndirectObject(number(kid.idnum), 0, writer) for kid in top_kids if isinstance(kid, IndirectObject))

    source_nums = source_tree["/ParentTree"].get_object()["/Nums"]
    for i in range(0, len(source_nums), 2):
        nums.append(NumberObject(int(source_nums[i]) + offset))
        nums.append(_Serialized(_serialize(source_nums[i + 1], number)))
    for page, source_page in zip(writer.pages[first_page:], reader.pages, strict=True):
        if "/StructParents" in source_page:
            page[NameObject("/StructParents")] = NumberObject(int(source_page["/StructParents"]) + offset)
        for annotation, source_annotation in zip(page.get("/Annots", ()), source_page.get("/Annots", ()), strict=False):
            source = source_annotation.get_object()
            if "/StructParent" in source:
                annotation.get_object()[NameObject("/StructParent")] = NumberObject(
                    int(source["/StructParent"]) + offset
                )


#: Each name's bytes as pypdf writes them: `NameObject.write_to_stream` escapes the name again at
#: every write, and a list's elements use a few dozen names some 200,000 times a 20,000-row dossier.
_NAME_BYTES: dict[Any, bytes] = {}


class _Parts:
    """A stream for pypdf's `write_to_stream` that appends to a list of bytes."""

    __slots__ = ("write",)

    def __init__(self, parts: list[bytes]) -> None:
        self.write = parts.append


def _serialize(value: Any, number: Callable[[int], int]) -> bytes:
    """A PDF value as pypdf writes it, each indirect reference renumbered by `number`.

    The join's hot loop (every structure element of every chunk): the classes are looked up
    once a value, not at every level (an import in a recursive function costs a call into
    the import system each time), names come from `_NAME_BYTES`, and the pieces are joined
    once at the end.
    """
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, NumberObject

    parts: list[bytes] = []
    append = parts.append
    stream = _Parts(parts)
    names = _NAME_BYTES

    def name(key: Any) -> bytes:
        data = names.get(key)
        if data is None:
            data = key.renumber()
            if len(names) < 4096:
                names[key] = data
        return data

    def walk(value: Any) -> None:
        kind = type(value)
        if kind is NameObject:
            append(name(value))
        elif kind is NumberObject:
            append(b"%d" % value)
        elif isinstance(value, IndirectObject):
            append(b"%d 0 R" % number(value.idnum))
        elif isinstance(value, DictionaryObject):
            append(b"<<")
            for key, item in dict.items(value):
                if type(key) is NameObject:
                    append(name(key))
                else:
                    key.write_to_stream(stream)
                append(b" ")
                walk(item)
                append(b"\n")
            append(b">>")
        elif isinstance(value, ArrayObject):
            append(b"[")
            for item in list.__iter__(value):
                append(b" ")
                walk(item)
            append(b" ]")
        else:
            value.write_to_stream(stream)

    walk(value)
    return b"".join(parts)


#: Structure types whose kids may hold table cells: the walks below do not descend into
#: others (paragraphs, spans, the cells' own content), a tenth of a list's elements.
_CONTAINERS = frozenset(
    "/Document /Part /Art /Sect /Div /BlockQuote /NonStruct /L /LI /LBody /Table /THead /TBody /TFoot /TR".split()
)


def _index_tables(node: Any, prefix: str, ids: dict[str, Any]) -> None:
    """Make the tables under `node` (one chunk's) navigable in the merged dossier.

    weasyprint numbers header cells' IDs per document, so the chunks' would repeat: each ID,
    and the `/Headers` of the data cells that name it, gets `prefix`, and goes into `ids`
    (for the /IDTree). Each header cell gets a /Scope (PDF/UA-1, 7.5): `/Column` in a table
    head, `/Row` in a body (the cover's "Country", "Date" …, `scope="row"` in the HTML).
    """
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

    stack: list[tuple[Any, str]] = [(node, "")]
    while stack:
        item, group = stack.pop()
        element = item.get_object()
        if isinstance(element, ArrayObject):
            stack.extend((kid, group) for kid in element)
            continue
        if not isinstance(element, DictionaryObject):
            continue  # a marked-content identifier
        kind = element.get("/S")
        if kind in ("/TH", "/TD"):
            key = _fix_cell(element, group, prefix)
            if key is not None and isinstance(item, IndirectObject):
                ids[key] = item
            continue
        if kind is not None and kind not in _CONTAINERS:
            continue
        kids = element.get("/K")
        if kids is not None:
            if kind in ("/THead", "/TBody", "/TFoot"):
                group = kind
            stack.extend((kid, group) for kid in (kids if isinstance(kids, ArrayObject) else [kids]))


def _fix_cell(element: Any, group: str, prefix: str) -> str | None:
    """Give a table cell of one chunk its place in the dossier; its new /ID if it has one.

    Its /ID and the /Headers naming header cells get `prefix`; a header cell gets a /Scope:
    `/Column` in a table head (`group`), `/Row` in a body.
    """
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

    attributes = element.get("/A")
    owner = attributes.get_object() if attributes is not None else None
    if not isinstance(owner, DictionaryObject):
        owner = DictionaryObject({NameObject("/O"): NameObject("/Table")})
        element[NameObject("/A")] = owner
    if "/Headers" in owner:
        headers = cast(ArrayObject, owner["/Headers"])
        owner[NameObject("/Headers")] = ArrayObject(TextStringObject(prefix + str(h)) for h in headers)
    if element.get("/S") == "/TH":
        owner[NameObject("/Scope")] = NameObject("/Column" if group == "/THead" else "/Row")
    if "/ID" not in element:
        return None
    key = prefix + str(element["/ID"])
    element[NameObject("/ID")] = TextStringObject(key)
    return key


def _write_id_tree(writer: Any, tree: Any, ids: dict[str, Any]) -> None:
    """The structure tree's /IDTree: every element ID, sorted, to its element."""
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

    if not ids:
        return
    names = ArrayObject()
    for key in sorted(ids):
        names.extend([TextStringObject(key), ids[key]])
    tree[NameObject("/IDTree")] = writer._add_object(DictionaryObject({NameObject("/Names"): names}))


#: The PDF/A extension schema that declares the PDF/UA identification (PDF/A admits only
#: declared XMP properties, and pdfuaid is not one of its predefined schemas).
_PDFUA_EXTENSION = """<rdf:Description rdf:about="" \
xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/" \
xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" \
xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">\
<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">\
<pdfaSchema:schema>PDF/UA Universal Accessibility Schema</pdfaSchema:schema>\
<pdfaSchema:namespaceURI>http://www.aiim.org/pdfua/ns/id/</pdfaSchema:namespaceURI>\
<pdfaSchema:prefix>pdfuaid</pdfaSchema:prefix>\
<pdfaSchema:property><rdf:Seq><rdf:li rdf:parseType="Resource">\
<pdfaProperty:name>part</pdfaProperty:name>\
<pdfaProperty:valueType>Integer</pdfaProperty:valueType>\
<pdfaProperty:category>internal</pdfaProperty:category>\
<pdfaProperty:description>Indicates, which part of ISO 14289 standard is followed</pdfaProperty:description>\
</rdf:li></rdf:Seq></pdfaSchema:property>\
</rdf:li></rdf:Bag></pdfaExtension:schemas></rdf:Description>\
<rdf:Description rdf:about="" xmlns:pdfuaid="http://www.aiim.org/pdfua/ns/id/" pdfuaid:part="1"/>\
"""


def _identify_pdf_ua(writer: Any, spec: JoinSpec) -> None:
    """Declare PDF/UA-1 in the XMP metadata beside PDF/A's identification, with the title.

    The first chunk's metadata (weasyprint's: PDF/A-3b's identification and that chunk's
    title) gets the PDF/UA identification and its extension schema, and the dossier's
    title as `dc:title`, which PDF/UA requires and PDF/A wants equal to the /Info title.
    The signature (pyHanko) later keeps these properties and updates the dates.
    """
    from xml.sax.saxutils import escape

    from pypdf.generic import DecodedStreamObject, NameObject

    root = writer._root_object
    xmp = root["/Metadata"].get_object().get_data().decode() if "/Metadata" in root else ""
    if "</rdf:RDF>" not in xmp:
        return
    xmp = re.sub(r"<rdf:Description rdf:about=\"\"><dc:title>.*?</dc:title></rdf:Description>", "", xmp, flags=re.S)
    title = (
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title><rdf:Alt>'
        f'<rdf:li xml:lang="x-default">{escape(spec.title)}</rdf:li></rdf:Alt></dc:title></rdf:Description>'
    )
    xmp = xmp.replace("</rdf:RDF>", _PDFUA_EXTENSION + title + "</rdf:RDF>")
    stream = _stream(DecodedStreamObject, xmp.encode())
    stream.update({NameObject("/Type"): NameObject("/Metadata"), NameObject("/Subtype"): NameObject("/XML")})
    root[NameObject("/Metadata")] = writer._add_object(stream)


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
