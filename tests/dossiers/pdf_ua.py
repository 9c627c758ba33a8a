"""PDF/UA-1's machine-checkable rules (ISO 14289-1, as the Matterhorn protocol lists them), read with pypdf.

veraPDF, the reference validator, comes from Maven Central, which the project's machines
cannot reach; this checks the same failure conditions that veraPDF's PDF/UA-1 profile
tests on the kinds of content a dossier has (text, tables, lists, headings, one figure,
an invisible signature widget, running heads laid over the pages), and says which.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from pypdf.generic import ArrayObject, ContentStream, DictionaryObject, IndirectObject

#: ISO 32000-1, 14.8.4: the standard structure types.
STANDARD_TYPES = {
    *"Document Part Art Sect Div BlockQuote Caption TOC TOCI Index NonStruct Private".split(),
    *"P H H1 H2 H3 H4 H5 H6 L LI Lbl LBody Table TR TH TD THead TBody TFoot".split(),
    *"Span Quote Note Reference BibEntry Code Link Annot Ruby RB RT RP Warichu WT WP".split(),
    *"Figure Formula Form".split(),
}
#: Operators that draw: each must be inside real content (a marked-content sequence with an
#: MCID) or an artifact (ISO 14289-1, 7.1: "content shall be marked as artifact or tagged").
DRAWING = {b"Tj", b"TJ", b"'", b'"', b"Do", b"sh", b"BI", b"S", b"s", b"f", b"F", b"f*", b"B", b"B*", b"b", b"b*"}
FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")


def failures(path: Path) -> list[str]:
    """Every PDF/UA-1 rule the file breaks, one line each (empty: none)."""
    reader = PdfReader(path)
    root = reader.trailer["/Root"]
    found: list[str] = []
    found += _catalog(reader, root)
    if "/StructTreeRoot" in root:
        found += _structure(root["/StructTreeRoot"].get_object())
        found += _parent_tree(reader, root.raw_get("/StructTreeRoot"))
    for number, page in enumerate(reader.pages, 1):
        found += [f"page {number}: {f}" for f in _page(page)]
    return sorted(set(found))


def _catalog(reader: PdfReader, root: Any) -> list[str]:
    found = []
    mark = root.get("/MarkInfo")
    if not mark or not _true(mark.get("/Marked")):
        found.append("7.1-8: the catalog's /MarkInfo does not say /Marked true")
    elif _true(mark.get("/Suspects")):
        found.append("7.1-9: /MarkInfo /Suspects is true")
    if "/StructTreeRoot" not in root:
        found.append("7.1-1: no structure tree")
    if not str(root.get("/Lang", "")).strip():
        found.append("7.2-34: the catalog has no /Lang")
    prefs = root.get("/ViewerPreferences")
    if not prefs or not _true(prefs.get_object().get("/DisplayDocTitle")):
        found.append("7.1-10: /ViewerPreferences /DisplayDocTitle is not true")
    xmp = root["/Metadata"].get_object().get_data().decode() if "/Metadata" in root else ""
    if not re.search(r"pdfuaid:part(=\"1\"|>1<)", xmp):
        found.append("5-1: the XMP metadata does not identify PDF/UA-1 (pdfuaid:part = 1)")
    title = re.search(r"<dc:title\b.*?<rdf:li[^>]*>([^<]+)</rdf:li>", xmp, re.S)
    if not title or not title.group(1).strip():
        found.append("7.1-11: the XMP metadata has no dc:title")
    info_title = (reader.metadata or {}).get("/Title")
    if title and info_title and title.group(1) != _xml_text(str(info_title)):
        found.append("PDF/A 6.6.3: the /Info /Title differs from dc:title")
    # The namespace URI as text, or as a resource (it is of type URI; pyHanko writes it so when it signs).
    declared = re.search(r'pdfaSchema:namespaceURI(>| rdf:resource=")http://www\.aiim\.org/pdfua/ns/id/', xmp)
    declared = declared and re.search(r'pdfaSchema:prefix(>|=")pdfuaid', xmp)
    if "pdfaid:part" in xmp and "pdfuaid:part" in xmp and not declared:
        found.append("PDF/A 6.6.2.3: pdfuaid is used without a PDF/A extension schema that declares it")
    return found


def _true(value: Any) -> bool:
    return value is not None and getattr(value, "value", value) is True


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def elements(node: Any) -> Iterator[tuple[IndirectObject | None, DictionaryObject]]:
    """The structure elements under `node`, depth first, in reading order."""
    stack = [node]
    while stack:
        item = stack.pop()
        element = item.get_object()
        if isinstance(element, ArrayObject):
            stack.extend(reversed(element))
            continue
        if not isinstance(element, DictionaryObject) or "/S" not in element:
            continue
        yield (item if isinstance(item, IndirectObject) else None), element
        kids = element.get("/K")
        if kids is not None:
            stack.extend(reversed(kids) if isinstance(kids, ArrayObject) else [kids])


def _structure(tree: DictionaryObject) -> list[str]:
    found = []
    role_map = {str(k): str(v) for k, v in tree.get("/RoleMap", {}).items()}
    if "/ParentTree" not in tree:
        found.append("7.1: the structure tree has no /ParentTree")
    ids: Counter[str] = Counter()
    headers: list[str] = []
    headings: list[int] = []
    for _ref, element in elements(tree["/K"]):
        kind = str(element["/S"])[1:]
        standard = role_map.get("/" + kind, "/" + kind)[1:]
        if standard not in STANDARD_TYPES:
            found.append(f"7.1-5: the structure type {kind} is neither standard nor mapped to one")
        if "/ID" in element:
            ids[str(element["/ID"])] += 1
        if standard == "Figure" and not str(element.get("/Alt") or element.get("/ActualText") or "").strip():
            found.append("7.3-1: a figure has no alternative text")
        if re.fullmatch(r"H[1-6]", standard):
            headings.append(int(standard[1]))
        attributes = element.get("/A")
        owners = [a.get_object() for a in (attributes if isinstance(attributes, ArrayObject) else [attributes]) if a]
        if standard == "TH" and not any(isinstance(o, DictionaryObject) and "/Scope" in o for o in owners):
            found.append("7.5-1: a table header cell has no /Scope")
        for owner in owners:
            if isinstance(owner, DictionaryObject) and "/Headers" in owner:
                headers += [str(h) for h in owner["/Headers"]]
    found += [f"14.7.1: the structure element ID {i!r} is not unique" for i, n in ids.items() if n > 1]
    id_tree = _names(tree["/IDTree"].get_object()) if "/IDTree" in tree else {}
    if ids and not id_tree:
        found.append("14.7.2: structure elements have IDs but the tree has no /IDTree")
    for missing in sorted(set(ids) - set(id_tree)):
        found.append(f"14.7.2: the ID {missing!r} is not in the /IDTree")
    for header in sorted(set(headers) - set(id_tree)):
        found.append(f"7.5-2: a cell's /Headers names {header!r}, which no element in the /IDTree has")
    if headings and headings[0] != 1:
        found.append(f"7.4.2-1: the first heading is H{headings[0]}, not H1")
    for before, after in zip(headings, headings[1:], strict=False):
        if after > before + 1:
            found.append(f"7.4.2-1: heading levels skip from H{before} to H{after}")
    return found


def _parent_tree(reader: PdfReader, tree_ref: Any) -> list[str]:
    """The links between the content and the tree, both ways (ISO 32000-1, 14.7.2 and 14.7.4.4).

    Each element's /P is the element (or tree root) whose /K holds it; each page's tagged
    content (its MCIDs) is found through the page's /StructParents in the /ParentTree, at
    an element that lists that MCID among its kids, on that page.
    """
    found: list[str] = []
    tree = tree_ref.get_object()
    stack: list[tuple[Any, int]] = [(kid, tree_ref.idnum) for kid in _as_list(tree.get("/K"))]
    while stack:
        item, parent = stack.pop()
        if not isinstance(item, IndirectObject):
            continue
        element = item.get_object()
        if not isinstance(element, DictionaryObject) or "/S" not in element:
            continue
        named = element.raw_get("/P") if "/P" in element else None
        if not isinstance(named, IndirectObject) or named.idnum != parent:
            found.append(f"14.7.2: a {element['/S']} element's /P is not the element that holds it")
        stack.extend((kid, item.idnum) for kid in _as_list(element.get("/K")))
    entries = _numbers(tree["/ParentTree"].get_object()) if "/ParentTree" in tree else {}
    for number, page in enumerate(reader.pages, 1):
        mcids = (
            [
                int(operands[1]["/MCID"])
                for operands, operator in ContentStream(page.get_contents(), reader).operations
                if operator == b"BDC"
                and len(operands) > 1
                and isinstance(operands[1], DictionaryObject)
                and "/MCID" in operands[1]
            ]
            if page.get_contents() is not None
            else []
        )
        if not mcids:
            continue
        if "/StructParents" not in page:
            found.append(f"14.7.4.4: page {number} has tagged content but no /StructParents")
            continue
        listed = entries.get(int(page["/StructParents"]))
        listed = listed.get_object() if listed is not None else None
        if not isinstance(listed, ArrayObject):
            found.append(f"14.7.4.4: page {number}'s /StructParents is not a key of the /ParentTree")
            continue
        for mcid in mcids:
            element = listed[mcid].get_object() if mcid < len(listed) else None
            kids = _as_list(element.get("/K")) if isinstance(element, DictionaryObject) else []
            here = [
                kid
                for kid in kids
                if (isinstance(kid, int) and int(kid) == mcid)
                or (isinstance(kid, DictionaryObject) and kid.get("/MCID") == mcid)
            ]
            owner_page = (here[0].get("/Pg") if here and isinstance(here[0], DictionaryObject) else None) or (
                element.raw_get("/Pg") if isinstance(element, DictionaryObject) and "/Pg" in element else None
            )
            if not here:
                found.append(f"14.7.4.4: page {number}'s MCID {mcid} leads to an element that does not hold it")
            elif not isinstance(owner_page, IndirectObject) or owner_page.idnum != page.indirect_reference.idnum:
                found.append(f"14.7.4.4: page {number}'s MCID {mcid} leads to an element on another page")
    return found


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, ArrayObject) else [value]


def _numbers(node: DictionaryObject) -> dict[int, Any]:
    numbers = {}
    flat = node.get("/Nums", [])
    for i in range(0, len(flat), 2):
        numbers[int(flat[i])] = flat[i + 1]
    for kid in node.get("/Kids", []):
        numbers |= _numbers(kid.get_object())
    return numbers


def _names(node: DictionaryObject) -> dict[str, Any]:
    names = {}
    flat = node.get("/Names", [])
    for i in range(0, len(flat), 2):
        names[str(flat[i])] = flat[i + 1]
    for kid in node.get("/Kids", []):
        names |= _names(kid.get_object())
    return names


def _page(page: Any) -> list[str]:
    found = []
    annotations = [a.get_object() for a in page.get("/Annots", [])]
    if annotations and page.get("/Tabs") != "/S":
        found.append("7.18.3-1: a page with annotations has no /Tabs /S")
    crop = [float(v) for v in page.cropbox]
    for annotation in annotations:
        rect = [float(v) for v in annotation.get("/Rect", [0, 0, 0, 0])]
        outside = crop[1] >= rect[3] or crop[3] <= rect[1] or crop[2] <= rect[0] or crop[0] >= rect[2]
        hidden = int(annotation.get("/F", 0)) & 2
        if not (outside or hidden) and "/StructParent" not in annotation:
            found.append(f"7.18.1-1: an annotation ({annotation.get('/Subtype')}) is not in the structure tree")
    found += _content(page.get_contents(), page.get("/Resources"), page.pdf, inside=[])
    found += _fonts(page.get("/Resources"))
    return found


def _content(contents: Any, resources: Any, pdf: Any, inside: list[str]) -> list[str]:
    """Drawing outside both tagged content and artifacts, in a content stream and its forms."""
    if contents is None:
        return []
    found = []
    resources = resources.get_object() if resources is not None else DictionaryObject()
    xobjects = resources.get("/XObject", DictionaryObject()).get_object()
    stack = list(inside)
    for operands, operator in ContentStream(contents, pdf).operations:
        if operator in (b"BDC", b"BMC"):
            tag = str(operands[0])
            properties = operands[1] if operator == b"BDC" and len(operands) > 1 else None
            if isinstance(properties, str) or hasattr(properties, "startswith"):
                properties = resources.get("/Properties", {}).get(properties)
            real = properties is not None and "/MCID" in properties.get_object()
            stack.append("artifact" if tag == "/Artifact" else "real" if real else stack[-1] if stack else "none")
        elif operator == b"EMC":
            if stack:
                stack.pop()
        elif operator in DRAWING and (not stack or stack[-1] == "none"):
            if operator == b"Do":
                xobject = xobjects[operands[0]].get_object()
                if xobject.get("/Subtype") == "/Form":
                    found += _content(xobject, xobject.get("/Resources"), pdf, stack)
                    continue
            found.append(f"7.1-3: content ({operator.decode()}) is neither tagged nor an artifact")
    return found


def _fonts(resources: Any, seen: set[int] | None = None) -> list[str]:
    found = []
    seen = set() if seen is None else seen
    resources = resources.get_object() if resources is not None else DictionaryObject()
    for ref in resources.get("/Font", DictionaryObject()).get_object().values():
        font = ref.get_object()
        if ref.idnum in seen if hasattr(ref, "idnum") else False:
            continue
        if hasattr(ref, "idnum"):
            seen.add(ref.idnum)
        name = str(font.get("/BaseFont", "?"))
        if font.get("/Subtype") != "/Type3":
            described = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            descriptor = described.get("/FontDescriptor")
            if descriptor is None or not any(key in descriptor.get_object() for key in FONT_FILES):
                found.append(f"7.21.4.1-1: the font {name} is not embedded")
        if "/ToUnicode" not in font:
            found.append(f"7.21.7-1: the font {name} has no /ToUnicode map")
    for ref in resources.get("/XObject", DictionaryObject()).get_object().values():
        xobject = ref.get_object()
        if xobject.get("/Subtype") == "/Form" and "/Resources" in xobject:
            found += _fonts(xobject["/Resources"], seen)
    return found
