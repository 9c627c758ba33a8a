"""The public verification page answers clearly, whatever it is given."""

from __future__ import annotations

from starlette.testclient import TestClient

from petition.dossiers.verify import MAX_UPLOAD_BYTES
from petition.schema import utcnow
from tests.support import csrf_from


def token(client: TestClient) -> str:
    return csrf_from(client.get("/verify").text)


def test_the_page_shows_the_platforms_certificate_fingerprint(client: TestClient) -> None:
    page = client.get("/verify?lang=de")
    assert page.status_code == 200
    assert '<html lang="de"' in page.text
    assert 'name="csrf_token"' in page.text and 'for="dossier"' in page.text and 'for="digest"' in page.text
    from petition.dossiers.sign import certificate_fingerprint

    assert certificate_fingerprint(client.app.state.services.settings) in page.text


def test_an_oversized_upload_gets_a_413_page_without_being_read(client: TestClient) -> None:
    big = b"%PDF-" + b"0" * (MAX_UPLOAD_BYTES + 100 * 1024)
    response = client.post(
        "/verify",
        data={"csrf_token": token(client)},
        files={"dossier": ("big.pdf", big, "application/pdf")},
    )
    assert response.status_code == 413
    assert "The file is too large" in response.text and "at most 20 MB" in response.text


def test_what_is_not_a_pdf_or_not_a_digest_is_a_400_with_the_value_kept(client: TestClient) -> None:
    not_pdf = client.post(
        "/verify",
        data={"csrf_token": token(client)},
        files={"dossier": ("notes.pdf", b"hello", "application/pdf")},
    )
    assert not_pdf.status_code == 400 and "not a PDF file" in not_pdf.text
    bad = client.post("/verify", data={"csrf_token": token(client), "digest": "abc<script>"})
    assert bad.status_code == 400 and "64 characters" in bad.text
    assert 'value="abc&lt;script&gt;"' in bad.text
    nothing = client.post("/verify", data={"csrf_token": token(client)})
    assert nothing.status_code == 400 and "choose a PDF file or enter a digest" in nothing.text
    unsigned = client.post(
        "/verify",
        data={"csrf_token": token(client)},
        files={"dossier": ("x.pdf", b"%PDF-1.7\n%%EOF\n", "application/pdf")},
    )
    assert unsigned.status_code == 200 and "not a PDF that can be read" in unsigned.text


def test_the_form_needs_its_csrf_token(client: TestClient) -> None:
    response = client.post("/verify", data={"digest": "0" * 64})
    assert response.status_code == 403


def test_a_digest_is_looked_up_among_issued_dossiers(client: TestClient) -> None:
    from petition.appeals.queries import DEMO_SLUG, get_appeal
    from petition.dossiers.tables import dossiers

    db = client.app.state.services.db
    pdf_digest, list_digest = "ab" * 32, "cd" * 32

    async def insert() -> None:
        appeal = await get_appeal(db, slug=DEMO_SLUG)
        async with db.write():
            await db.execute(
                dossiers.insert().values(
                    appeal_id=appeal["id"],
                    country="UA",
                    state="done",
                    progress=100,
                    signatory_count=12,
                    anonymous_count=3,
                    pdf_sha256=pdf_digest,
                    list_sha256=list_digest,
                    created_at=utcnow(),
                    finished_at=utcnow(),
                )
            )

    client.portal.call(insert)
    by_list = client.get(f"/verify?digest={list_digest.upper()}")
    assert by_list.status_code == 200
    assert "digest of the list in a dossier issued by this platform" in by_list.text
    assert "Ukraine" in by_list.text and "<td>12</td>" in by_list.text and "<td>3</td>" in by_list.text
    typed = ":".join(pdf_digest[i : i + 2] for i in range(0, 64, 2))
    by_pdf = client.post("/verify", data={"csrf_token": token(client), "digest": typed})
    assert "digest of a dossier file issued by this platform" in by_pdf.text
    unknown = client.get("/verify?digest=" + "e" * 64)
    assert "does not match any dossier this platform issued" in unknown.text


def test_a_dossiers_log_checkpoint_is_checked_against_todays_log(client: TestClient) -> None:
    import base64

    from petition.dossiers.content import LogCheckpoint
    from petition.dossiers.verify import anchor_of
    from petition.transparency import store
    from tests.support import wait_for

    wait_for(lambda: client.get("/log/checkpoint").status_code == 200 or None, timeout=30, interval=0.1)
    db = client.app.state.services.db
    latest = client.portal.call(store.latest, db)
    root = base64.b64encode(latest.root).decode()
    same = client.portal.call(anchor_of, db, LogCheckpoint(latest.size, root))
    assert same is not None and same.consistent is True and same.latest_size == latest.size
    # A root the log never had, or a log that shrank: not consistent.
    forged = client.portal.call(anchor_of, db, LogCheckpoint(latest.size, base64.b64encode(b"\0" * 32).decode()))
    assert forged is not None and forged.consistent is False
    longer = client.portal.call(anchor_of, db, LogCheckpoint(latest.size + 5, root))
    assert longer is not None and longer.consistent is False
    assert client.portal.call(anchor_of, db, None) is None
