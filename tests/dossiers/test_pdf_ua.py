"""The dossier as a screen reader gets it: real dossiers held to PDF/UA-1's machine-checkable rules.

veraPDF cannot be installed on the project's machines (Maven Central is out of reach);
`tests/dossiers/pdf_ua.py` checks the same failure conditions (docs/dossiers.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pypdf import PdfReader
from starlette.testclient import TestClient

from petition.dossiers.render import render_pdf
from petition.dossiers.sign import load_certificate_der, signing_config
from petition.dossiers.verify import check_signature
from petition.i18n import translations
from petition.settings import Settings
from tests.dossiers import pdf_ua
from tests.dossiers.test_dossier_pdf import SCRIPT_NAMES, build_via_worker, upload
from tests.dossiers.test_letter import SCATTERED, content, presentation
from tests.factories import add_endorsements, demo_appeal_id
from tests.support import wait_for


def test_the_signed_dossier_meets_pdf_ua_1_and_stays_genuine(
    client: TestClient, settings: Settings, database_url: str
) -> None:
    orgs = [
        dict(organisation_name=name, city="Offenbach" if i % 2 else "Berlin")
        for i, name in enumerate(SCRIPT_NAMES.values())
    ]
    add_endorsements(database_url, rows=orgs)
    wait_for(lambda: client.get("/log/checkpoint").status_code == 200 or None, timeout=30, interval=0.1)
    row = build_via_worker(client, settings, demo_appeal_id(database_url), "DE")
    pdf = Path(row["file_path"])

    assert pdf_ua.failures(pdf) == []
    root = PdfReader(pdf).trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data().decode()
    # Both identifications, side by side: PDF/A-3b as before, and PDF/UA-1.
    assert re.search(r'pdfaid:part(="3"|>3<)', xmp) and re.search(r'pdfuaid:part(="1"|>1<)', xmp)
    # The title a screen reader announces is the dossier's, not a file name.
    assert "Deutschland" in re.search(r"<dc:title\b.*?</dc:title>", xmp, re.S).group(0)
    # The QR code is described, in the dossier's language.
    figures = [e for _r, e in pdf_ua.elements(root["/StructTreeRoot"]["/K"]) if e["/S"] == "/Figure"]
    alt = translations("de").gettext("QR code: the address of the verification page, printed beside it")
    assert [str(f["/Alt"]) for f in figures] == [alt] and alt.startswith("QR-Code")

    # Signed after all this, and still genuine.
    check = check_signature(pdf.read_bytes(), load_certificate_der(signing_config(settings)))
    assert check.signed and check.intact and check.whole_file
    page = upload(client, pdf.read_bytes())
    assert "The signature is intact" in page.text and "This exact file was issued by this platform" in page.text


@pytest.mark.asyncio
async def test_header_cells_keep_unique_ids_across_the_chunks_of_a_long_list(tmp_path: Path) -> None:
    data, _pages = await render_pdf(content(rows=30, cities=SCATTERED), presentation(), chunk_rows=10)
    path = tmp_path / "dossier.pdf"
    path.write_bytes(data)

    assert pdf_ua.failures(path) == []
    tree = PdfReader(path).trailer["/Root"]["/StructTreeRoot"]
    ids = [str(e["/ID"]) for _r, e in pdf_ua.elements(tree["/K"]) if "/ID" in e]
    # Three chunks of the list, each with its column headers: 3 × 5 IDs and the cover's, none twice.
    assert len(ids) >= 15 and len(set(ids)) == len(ids)
