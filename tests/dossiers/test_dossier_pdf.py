"""A country's dossier, really rendered, signed and checked with pyHanko, poppler and /verify."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

import pytest
from pypdf import PdfReader
from starlette.testclient import TestClient

from petition.dossiers import jobs
from petition.dossiers.sign import certificate_fingerprint, load_certificate_der, signing_config
from petition.dossiers.verify import check_signature
from petition.i18n import translations
from petition.settings import Settings
from tests.dossiers.factories import (
    flip_byte,
    pdfsig,
    pdftotext,
    printed_checkpoint,
    recompute_list_digest,
    run,
)
from tests.factories import add_endorsements, demo_appeal_id
from tests.support import csrf_from, wait_for

#: One name per script the dossier must render with real glyphs.
SCRIPT_NAMES = {
    "Latin": "Ärzteverband für Frieden",
    "Cyrillic": "Союз комитетов солдатских матерей",
    "Greek": "Ένωση Αντιρρησιών Συνείδησης",
    "Georgian": "მშვიდობის კავშირი",
    "Armenian": "Խաղաղության Հայկական Ասոցիացիա",
    # No lam-alef in it: pdftotext maps that ligature back as alef-lam.
    "Arabic": "جمعية الحرية العالمية",
    "Hebrew": "ארגון שלום ישראלי",
}
#: As pdffonts names the subsets: Noto Sans covers Latin, Greek and Cyrillic.
SCRIPT_FONTS = (
    "Noto-Sans ",
    "Noto-Sans-Georgian ",
    "Noto-Sans-Armenian ",
    "Noto-Sans-Arabic ",
    "Noto-Sans-Hebrew ",
)


class Listener:
    """A socket on loopback that counts every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Listener:
    lst = Listener()
    yield lst
    lst.close()


def build_via_worker(client: TestClient, settings: Settings, appeal_id: int, country: str) -> dict:
    """Queue a build as the admin area will, and wait for the app's in-process worker."""
    services = client.app.state.services

    async def queue() -> int:
        return await jobs.queue_build(services.db, appeal_id=appeal_id, country=country)

    dossier_id = client.portal.call(queue)
    services.dossier_worker.notify()

    async def state() -> dict | None:
        row = await jobs.get_dossier(services.db, dossier_id=dossier_id)
        return dict(row) if row and row["state"] in ("done", "failed") else None

    row = wait_for(lambda: client.portal.call(state), timeout=120, interval=0.2)
    assert row["state"] == "done", row["error"]
    return row


def fingerprint_hex(settings: Settings) -> str:
    return certificate_fingerprint(settings).replace(":", "").lower()


def upload(client: TestClient, data: bytes, name: str = "dossier.pdf"):
    token = csrf_from(client.get("/verify").text)
    return client.post("/verify", data={"csrf_token": token}, files={"dossier": (name, data, "application/pdf")})


def test_dossier_names_the_countrys_public_organisations_and_is_verifiably_signed(
    client: TestClient, settings: Settings, database_url: str, listener: Listener, tmp_path: Path
) -> None:
    hostile = [
        f'<img src="http://127.0.0.1:{listener.port}/x">',
        '<img src="http://127.0.0.1:9/x">',
        '<link rel=attachment href="file:///etc/passwd">',
    ]
    public_de = [*SCRIPT_NAMES.values(), *hostile, "Connection e.V."]
    orgs = [dict(organisation_name=name, city="Offenbach" if i % 2 else "Berlin") for i, name in enumerate(public_de)]
    orgs += [
        dict(organisation_name="Geheime Friedensgruppe Minsk", visibility="anonymous"),
        dict(organisation_name="Verborgene Initiative", visibility="anonymous", state="approved"),
        # Three: fewer would not be attributed to Germany (ANONYMOUS_COUNT_THRESHOLD, test_small_counts.py).
        dict(organisation_name="Stiller Kreis", visibility="anonymous"),
        dict(organisation_name="Noch nicht bestätigt", state="pending"),
        dict(organisation_name="Zurückgezogener Verein", state="withdrawn"),
        dict(organisation_name="Association française pour la paix", country="FR"),
    ]
    add_endorsements(database_url, rows=orgs)
    appeal_id = demo_appeal_id(database_url)
    # The dossier is anchored to the public log: wait for the app's worker to publish a checkpoint.
    wait_for(lambda: client.get("/log/checkpoint").status_code == 200 or None, timeout=30, interval=0.1)
    row = build_via_worker(client, settings, appeal_id, "DE")
    pdf = Path(row["file_path"])
    assert pdf.parent == settings.data_dir / "dossiers"
    data = pdf.read_bytes()

    text = re.sub("[\u202a-\u202e]", "", pdftotext(pdf))  # bidi marks pdftotext adds
    flat = re.sub(r"\s+", " ", text)
    dense = re.sub(r"\s+", "", text)  # long names wrap inside their cell
    for name in public_de:
        assert re.sub(r"\s+", "", name) in dense or _rtl_present(name, text), name
    for absent in (
        "Geheime Friedensgruppe",
        "Verborgene Initiative",
        "Stiller Kreis",
        "Noch nicht bestätigt",
        "Zurückgezogener Verein",
        "Association française",
    ):
        assert absent not in flat, absent
    # A German dossier speaks German (the catalogue's words, so a new translation does not break this).
    german = translations("de")
    assert (
        german.ngettext(
            "and %(num)s organisation that asked not to be named",
            "and %(num)s organisations that asked not to be named",
            3,
        )
        % {"num": 3}
        in flat
    )
    assert row["signatory_count"] == len(public_de) and row["anonymous_count"] == 3

    # The digest on the cover is the one recomputed from the database, and the one recorded.
    cover = run("pdftotext", "-f", "1", "-l", "1", "-enc", "UTF-8", pdf, "-")
    label = re.escape(german.gettext("SHA-256 of the list")).replace("\\ ", "\\s+")
    digest = re.search(label + r"\s+([0-9a-f]{64})", cover)
    assert digest, cover
    # The public log's checkpoint at build time, printed on the cover, is in the list's header.
    printed = printed_checkpoint(pdf)
    assert printed is not None and f"checkpoint\t{printed[0]}\t{printed[1]}\n" in _attached(pdf, tmp_path)
    assert digest.group(1) == recompute_list_digest(database_url, "DE", checkpoint=printed) == row["list_sha256"]

    # Page numbers run across the chunks: "page 1 of N" … "page N of N".
    pages = int(re.search(r"Pages:\s+(\d+)", run("pdfinfo", pdf)).group(1))
    assert pages == row["page_count"]
    for n in range(1, pages + 1):
        assert german.gettext("page %(page)s of %(pages)s") % {"page": n, "pages": pages} in flat

    # Every script drawn with an embedded Noto font.
    fonts = run("pdffonts", pdf)
    for family in SCRIPT_FONTS:
        line = next((ln for ln in fonts.splitlines() if f"+{family}" in ln), None)
        assert line is not None, (family, fonts)
        assert " yes " in line  # embedded
    # The hostile names fetched nothing and attached nothing: only the canonical list is attached.
    assert listener.connections == 0
    attachments = run("pdfdetach", "-list", pdf)
    assert "canonical-list.txt" in attachments and "passwd" not in attachments
    assert attachments.strip().splitlines()[0].startswith("1 ")

    # pyHanko: intact and signed by this platform's (self-signed) certificate.
    root = load_certificate_der(signing_config(settings))
    check = check_signature(data, root)
    assert check.signed and check.intact and check.whole_file
    assert check.signer_fingerprint == fingerprint_hex(settings)
    assert check.list_sha256 == row["list_sha256"]
    # poppler agrees (read the output: pdfsig exits 0 even on a mismatch).
    sig = pdfsig(pdf)
    assert "Signature is Valid" in sig and "Total document signed" in sig
    # Signed and still tagged: the structure tree, /MarkInfo and the language survive join and signature.
    catalog = PdfReader(pdf).trailer["/Root"]
    assert catalog["/MarkInfo"]["/Marked"] and "/StructTreeRoot" in catalog and catalog["/Lang"] == "de"

    # The verification page: intact, ours, issued, with country and count.
    page = upload(client, data)
    assert page.status_code == 200
    assert "The signature is intact" in page.text
    assert "signed with this platform's certificate" in page.text
    assert "This exact file was issued by this platform" in page.text
    assert "Germany" in page.text and f"<td>{len(public_de)}</td>" in page.text
    # The checkpoint the dossier carries, and today's log consistent with it.
    assert f"Public log checkpoint in the dossier: size {printed[0]}, root {printed[1]}" in page.text
    assert "is consistent with it" in page.text
    by_digest = client.get("/verify", params={"digest": row["list_sha256"]})
    assert f"size {printed[0]}, root {printed[1]}" in by_digest.text and "is consistent with it" in by_digest.text

    # One flipped byte: pyHanko, pdfsig and the page all say so.
    broken = flip_byte(data)
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(broken)
    broken_check = check_signature(broken, root)
    assert not broken_check.intact
    assert "Signature is Valid" not in pdfsig(bad)
    assert re.search(r"Signature is Invalid|Digest Mismatch", pdfsig(bad))
    page = upload(client, broken)
    assert page.status_code == 200
    assert "The signature is broken" in page.text
    assert "This file does not match any dossier this platform issued" in page.text


def _attached(pdf: Path, tmp_path: Path) -> str:
    out = tmp_path / "canonical-list.txt"
    run("pdfdetach", "-save", "1", "-o", out, pdf)
    return out.read_text(encoding="utf-8")


def _rtl_present(name: str, text: str) -> bool:
    """pdftotext may put right-to-left words in visual order; every word must still be there."""
    words = name.split()
    return all(w in text or w[::-1] in text for w in words)


def test_a_country_without_named_organisations_gets_a_dossier_that_names_none(
    client: TestClient, settings: Settings, database_url: str
) -> None:
    add_endorsements(
        database_url,
        rows=[
            dict(organisation_name="Stille Gruppe", country="BY", visibility="anonymous"),
            dict(organisation_name="Громкая группа", country="RU"),
        ],
    )
    appeal_id = demo_appeal_id(database_url)
    row = build_via_worker(client, settings, appeal_id, "BY")
    flat = re.sub(r"\s+", " ", pdftotext(Path(row["file_path"])))
    assert "Stille Gruppe" not in flat and "Громкая группа" not in flat
    # Belarus reads Russian: the appeal in Russian, then in English.
    assert "Защита и убежище" in flat and "Protection and asylum" in flat
    # One anonymous organisation is not attributed to Belarus (ANONYMOUS_COUNT_THRESHOLD).
    assert row["signatory_count"] == 0 and row["anonymous_count"] == 0


def test_a_proved_domain_is_printed_beside_its_organisation_and_no_other(
    client: TestClient, settings: Settings, database_url: str
) -> None:
    """Issue 18: a dossier shows the domain a valid proof holds when it is built; a lapsed proof
    shows nothing, and an anonymous organisation's proof never reaches the dossier."""
    import datetime as dt

    from tests.support import run_sql

    proved, lapsed, hidden = add_endorsements(
        database_url,
        rows=[
            dict(organisation_name="Bewiesene Friedensgruppe", website="https://proved.example"),
            dict(organisation_name="Verfallene Initiative", website="https://lapsed.example"),
            dict(organisation_name="Verborgener Kreis", visibility="anonymous", website="https://hidden.example"),
        ],
    )
    at = dt.datetime(2026, 11, 30)
    for endorsement_id, domain, state in (
        (proved, "proved.example", "verified"),
        (lapsed, "lapsed.example", "lapsed"),
        (hidden, "hidden.example", "verified"),
    ):
        run_sql(
            database_url,
            "INSERT INTO domain_proofs (endorsement_id, domain, challenge, state, created_at, expires_at,"
            " verified_at, last_result) VALUES (:id, :domain, :challenge, :state, :at, :at, :at, '')",
            id=endorsement_id,
            domain=domain,
            challenge=f"{endorsement_id:032d}",
            state=state,
            at=at,
        )
    row = build_via_worker(client, settings, demo_appeal_id(database_url), "DE")
    flat = re.sub(r"\s+", " ", re.sub("[\u202a-\u202e]", "", pdftotext(Path(row["file_path"]))))
    # Germany's dossier is in German.
    assert "Domain bestätigt: proved.example" in flat
    assert "Domain bestätigt: lapsed.example" not in flat and "lapsed.example" in flat  # its website only
    assert "hidden.example" not in flat and "Verborgener Kreis" not in flat
