"""The verification page against the files people forge: each test is named after an attack.

One real dossier is rendered and signed once for the module (with a certificate made for
it), then recorded in each test's own database as an issued dossier; the attacks are
made from it with pyHanko and pypdf.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pytest
from babel.dates import format_datetime
from starlette.testclient import TestClient

from petition.app import create_app
from petition.appeals.queries import DEMO_SLUG, get_appeal
from petition.dossiers.content import AppealText, DossierContent, Signatory, canonical_list
from petition.dossiers.join import LIST_DIGEST_KEY
from petition.dossiers.presentation import Presentation
from petition.dossiers.render import render_pdf
from petition.dossiers.sign import SigningConfig, format_fingerprint, sign_pdf_bytes
from petition.dossiers.tables import dossiers
from petition.i18n import translations
from tests.conftest import BASE_URL, make_settings
from tests.dossiers.factories import flip_byte, make_p12
from tests.support import csrf_from

ISSUED_AT = dt.datetime(2026, 3, 14, 12, 0, tzinfo=dt.UTC)
#: As the demo appeal's texts title it (petition/appeals/demo/*.md).
TITLES = {
    "en": "Protection and asylum for deserters and conscientious objectors",
    "de": "Schutz und Asyl für Deserteure und Kriegsdienstverweigerer",
    "fr": "Protection et asile pour les déserteurs et objecteurs de conscience",
}
FINGERPRINT = re.compile(r"([0-9A-F]{2}:){31}[0-9A-F]{2}")


@dataclass(frozen=True)
class Files:
    p12: Path  # this platform's certificate in the tests
    ours: str  # its SHA-256 fingerprint, hex
    other: str  # the forger's certificate's fingerprint, hex
    genuine: bytes  # a dossier as issued
    list_sha256: str
    forged_unsigned: bytes  # the genuine dossier's text, edited, claiming its list digest
    forged_signed: bytes  # the same, signed with the forger's certificate
    unrecorded: bytes  # the same, signed with this platform's certificate but never recorded

    @property
    def pdf_sha256(self) -> str:
        return hashlib.sha256(self.genuine).hexdigest()


def _content() -> DossierContent:
    rows = tuple(
        Signatory(name, "Berlin", "peace", f"https://org{i}.example.org", dt.date(2026, 3, 1))
        for i, name in enumerate(["Connection e.V.", "Friedensnetz Köln", "Ökumenischer Kreis"])
    )
    data = canonical_list(appeal_slug=DEMO_SLUG, country="DE", signatories=rows, anonymous_count=0)
    return DossierContent(
        appeal_id=1,
        appeal_slug=DEMO_SLUG,
        country="DE",
        language="de",
        texts=(AppealText("de", TITLES["de"], "Bundestag", "Ein **Aufruf**."),),
        signatories=rows,
        anonymous_count=0,
        generated_at=ISSUED_AT,
        canonical_list=data,
        list_sha256=hashlib.sha256(data).hexdigest(),
    )


def _with_list_digest(pdf: bytes, digest: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(BytesIO(pdf)))
    writer.add_metadata({LIST_DIGEST_KEY: digest})
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _edited(pdf: bytes) -> bytes:
    """The unsigned dossier with another title: what a forger hands round as the dossier."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(BytesIO(pdf)))
    writer.add_metadata({"/Title": "Dossier (with two more organisations)"})
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    directory = tmp_path_factory.mktemp("verify-attacks")
    ours_der = make_p12(directory / "ours.p12", "Petition organisers at testserver")
    other_der = make_p12(directory / "forger.p12", "Petition organisers at testserver")
    content = _content()
    ours_hex = hashlib.sha256(ours_der).hexdigest()
    presentation = Presentation(f"{BASE_URL}/verify?digest={content.list_sha256}", format_fingerprint(ours_hex))
    unsigned, _pages = asyncio.run(render_pdf(content, presentation))

    def sign(pdf: bytes, p12: str) -> bytes:
        config = SigningConfig(str(directory / p12), None, None, False)
        return sign_pdf_bytes(pdf, config, reason="Dossier", location=BASE_URL)

    forged = _edited(unsigned)
    return Files(
        p12=directory / "ours.p12",
        ours=ours_hex,
        other=hashlib.sha256(other_der).hexdigest(),
        genuine=sign(unsigned, "ours.p12"),
        list_sha256=content.list_sha256,
        forged_unsigned=forged,
        forged_signed=sign(forged, "forger.p12"),
        unrecorded=sign(forged, "ours.p12"),
    )


@pytest.fixture
def client(database_url: str, tmp_path: Path, files: Files) -> Iterator[TestClient]:
    """The site signing with the module's certificate, with the genuine dossier on record."""
    settings = make_settings(database_url, tmp_path / "data", None, signing_p12=str(files.p12))
    with TestClient(create_app(settings), base_url=BASE_URL) as test_client:
        record(test_client, pdf_sha256=files.pdf_sha256, list_sha256=files.list_sha256)
        yield test_client


def record(client: TestClient, *, pdf_sha256: str, list_sha256: str, state: str = "done", country: str = "DE") -> None:
    db = client.app.state.services.db

    async def insert() -> None:
        appeal = await get_appeal(db, slug=DEMO_SLUG)
        async with db.write():
            await db.execute(
                dossiers.insert().values(
                    appeal_id=appeal["id"],
                    country=country,
                    state=state,
                    progress=100,
                    signatory_count=3,
                    anonymous_count=0,
                    pdf_sha256=pdf_sha256,
                    list_sha256=list_sha256,
                    created_at=ISSUED_AT,
                    finished_at=ISSUED_AT if state == "done" else None,
                )
            )

    client.portal.call(insert)


def upload(client: TestClient, data: bytes, lang: str = "en") -> str:
    token = csrf_from(client.get("/verify").text)
    response = client.post(
        f"/verify?lang={lang}",
        data={"csrf_token": token},
        files={"dossier": ("dossier.pdf", data, "application/pdf")},
    )
    assert response.status_code == 200, response.text
    return response.text


def typed(client: TestClient, digest: str, lang: str = "en") -> str:
    token = csrf_from(client.get("/verify").text)
    response = client.post(f"/verify?lang={lang}", data={"csrf_token": token, "digest": digest})
    assert response.status_code == 200, response.text
    return response.text


def verdict_of(page: str) -> str:
    """The verdict panel's kind and heading: the first thing the page answers."""
    found = re.search(r'<section class="verdict verdict-([a-z-]+)"[^>]*>\s*<h2[^>]*>\s*([^<]+?)\s*</h2>', page)
    assert found, page
    return f"{found.group(1)}: {found.group(2)}"


def fingerprints_on(page: str) -> list[str]:
    return re.findall(r'<code class="fingerprint">([^<]*)</code>', page)


def test_a_genuine_dossier_is_still_genuine_and_unchanged(client: TestClient, files: Files) -> None:
    page = upload(client, files.genuine)
    assert verdict_of(page) == "genuine: Genuine and unchanged"
    assert "This exact file was issued by this platform" in page
    assert "It was signed with this platform's certificate." in page
    assert 'class="check bad"' not in page
    assert files.list_sha256 in page and files.pdf_sha256 in page


def test_a_genuine_dossier_with_bytes_appended_is_reported_as_changed_after_signing(
    client: TestClient, files: Files
) -> None:
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    # An incremental update after the signature (here: the document's language changed) …
    writer = IncrementalPdfFileWriter(BytesIO(files.genuine), strict=False)
    writer.root[generic.NameObject("/Lang")] = generic.TextStringObject("ru")
    writer.update_root()
    updated = BytesIO()
    writer.write(updated)
    # … and plain bytes after the end of the file, with no end-of-file marker of their own.
    for changed in (updated.getvalue(), files.genuine + b"\x00" * 4096):
        page = upload(client, changed)
        assert "not signed with this platform" not in page
        assert verdict_of(page) == "changed: Signed by this platform, but changed after signing"
        assert "something was added to the file after it was signed" in page
        assert "It was signed with this platform's certificate." in page
        assert "This exact file was issued" not in page
        # It carries the genuine list digest, and is said not to be that dossier.
        assert "it is not that dossier" in page
        # Every fingerprint on the page in one format; ours is not printed as the signer's.
        shown = fingerprints_on(page)
        assert shown == [format_fingerprint(files.ours)]
        assert all(FINGERPRINT.fullmatch(value) for value in shown)
        assert files.ours not in page


def test_a_genuine_dossier_with_one_byte_changed_is_reported_as_changed_after_signing(
    client: TestClient, files: Files
) -> None:
    page = upload(client, flip_byte(files.genuine))
    assert "not signed with this platform" not in page
    assert verdict_of(page) == "changed: Signed by this platform, but changed after signing"
    assert "The signature is broken" in page
    assert "It was signed with this platform's certificate." in page
    assert fingerprints_on(page) == [format_fingerprint(files.ours)]
    assert "This file does not match any dossier this platform issued" in page


def test_a_dossier_signed_with_another_certificate_is_reported_as_such(client: TestClient, files: Files) -> None:
    page = upload(client, files.forged_signed)
    # The forger's fingerprint, in the format of ours, beside ours.
    assert fingerprints_on(page) == [format_fingerprint(files.other), format_fingerprint(files.ours)]
    assert all(FINGERPRINT.fullmatch(value) for value in fingerprints_on(page))
    assert verdict_of(page) == "other-certificate: Signed with another certificate"
    assert "It was signed with this platform" not in page


def test_a_forged_file_carrying_a_real_list_digest_is_not_confirmed(client: TestClient, files: Files) -> None:
    for forged, kind in ((files.forged_unsigned, "not-signed"), (files.forged_signed, "other-certificate")):
        page = upload(client, forged)
        assert "SHA-256 of the list, as recorded in the file" not in page
        assert "This exact file was issued" not in page
        assert verdict_of(page).startswith(f"{kind}: ")
        assert "Genuine and unchanged" not in page
        # The digest it carries belongs to an issued dossier, and the page says it is not that one.
        assert "It states the list digest of the dossier below, but it is not that dossier" in page
        assert files.list_sha256 in page

    # The digest it carries, entered back: the dossier it belongs to, and no word about the file.
    for answer in (typed(client, files.list_sha256), client.get(f"/verify?digest={files.list_sha256}").text):
        assert "This is the digest of the list in a dossier issued by this platform" in answer
        assert TITLES["en"] in answer and "Germany" in answer
        assert format_datetime(ISSUED_AT, "medium", tzinfo=dt.UTC, locale="en") in answer
        assert "not whether a copy you hold is that dossier" in answer


def test_a_digest_entered_by_hand_is_confirmed_only_if_issued(client: TestClient, files: Files) -> None:
    # A build that never finished has digests on record too; they confirm nothing.
    queued_pdf, queued_list = "ab" * 32, "cd" * 32
    record(client, pdf_sha256=queued_pdf, list_sha256=queued_list, state="failed", country="FR")
    # A forged file that states a list digest on record nowhere: the page does not vouch for it.
    claimed = "ef" * 32
    page = upload(client, _with_list_digest(files.forged_unsigned, claimed))
    assert "SHA-256 of the list, as recorded in the file" not in page
    assert "It states a list digest that matches no dossier this platform issued" in page
    assert "issued by this platform:" not in page and "<table" not in page
    for digest in (queued_pdf, queued_list, claimed, hashlib.sha256(files.forged_signed).hexdigest()):
        answer = typed(client, digest.upper())
        assert "This digest does not match any dossier this platform issued." in answer
        assert "issued by this platform:" not in answer and "<table" not in answer

    # A digest on record: which dossier it is, and that this says nothing about a copy.
    by_file = typed(client, ":".join(re.findall("..", files.pdf_sha256)), lang="de")
    german = translations("de")
    assert (
        german.gettext(
            "A digest only tells which dossier it belongs to, not whether a copy you hold is "
            "that dossier: anyone can copy a digest. Compare the appeal, country, date and numbers "
            "above with your copy, and upload the PDF file itself to check it."
        )
        in by_file
    )
    assert "Dies ist die Prüfsumme einer Dossier-Datei" in by_file
    assert TITLES["de"] in by_file and "Deutschland" in by_file
    assert format_datetime(ISSUED_AT, "medium", tzinfo=dt.UTC, locale="de") in by_file
    assert "<td>3</td><td>0</td>" in by_file


def test_verify_shows_the_appeals_title_not_its_slug(client: TestClient, files: Files) -> None:
    for lang in ("de", "fr", "en"):
        page = upload(client, files.genuine, lang=lang)
        assert TITLES[lang] in page, lang
        assert f">{DEMO_SLUG}<" not in page
        assert verdict_of(page).startswith("genuine: ")
    answer = client.get(f"/verify?digest={files.list_sha256}&lang=fr").text
    assert TITLES["fr"] in answer and f">{DEMO_SLUG}<" not in answer
    # The title links to the appeal.
    assert f'<a href="/appeals/{DEMO_SLUG}?lang=fr">{TITLES["fr"]}' in answer


def _damaged_signature(pdf: bytes) -> bytes:
    """The signature value changed (outside the signed bytes): it names our certificate but does
    not verify with it, as when someone pastes our certificate into a signature of their own."""
    start = pdf.rindex(b"/Contents <") + len(b"/Contents <")
    end = pdf.index(b">", start)
    at = start + len(pdf[start:end].rstrip(b"0")) - 10  # inside the ECDSA signature value
    flipped = b"1" if pdf[at : at + 1] != b"1" else b"2"
    return pdf[:at] + flipped + pdf[at + 1 :]


def test_a_signature_that_names_our_certificate_but_does_not_verify_proves_nothing(
    client: TestClient, files: Files
) -> None:
    page = upload(client, _damaged_signature(files.genuine))
    assert verdict_of(page) == "unreadable: Unreadable"
    assert "damaged or was not made with the certificate it names" in page
    assert "Signed by this platform" not in page and "The signature is intact" not in page
    assert "It was signed with this platform's certificate." not in page


def test_a_dossier_signed_here_but_not_on_record_is_not_called_genuine(client: TestClient, files: Files) -> None:
    page = upload(client, files.unrecorded)
    assert verdict_of(page) == "unrecorded: Signed by this platform, but not in its records"
    assert "It was signed with this platform's certificate." in page
    assert "This exact file was issued" not in page
    # The list digest it states is a real dossier's, and it is not that dossier.
    assert "it is not that dossier" in page
