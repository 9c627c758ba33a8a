"""Trusted time for dossiers: PAdES B-T with a timestamp authority; B-B, marked pending, and a
document timestamp added later when the authority did not answer at build time."""

from __future__ import annotations

import asyncio
import hashlib
import html
import shutil
from dataclasses import replace
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from petition.app import create_app
from petition.appeals.queries import DEMO_SLUG, get_appeal
from petition.db import Database
from petition.dossiers import jobs
from petition.dossiers.sign import SIGNATURE_FIELD, TIMESTAMP_FIELD, load_certificate_der, signing_config
from petition.settings import Settings
from tests.conftest import BASE_URL, make_settings
from tests.dossiers.factories import pdfsig
from tests.factories import add_endorsements
from tests.organisers.support import login_as
from tests.timestamps import TimestampAuthority, tsa

__all__ = ["tsa"]


PENDING = "Pending: the timestamp authority did not answer when this dossier was signed."
GERMAN_PENDING = "Ausstehend: Der Zeitstempeldienst hat nicht geantwortet"


def _organiser_page(settings: Settings, dossier_id: int, language: str = "en") -> str:
    """The organiser area's page of the dossier (no worker of the app's own meanwhile)."""
    with TestClient(create_app(replace(settings, run_worker=False)), base_url=BASE_URL) as client:
        login_as(client, "moderator")
        page = client.get(f"/admin/dossiers/{dossier_id}", params={"lang": language})
        assert page.status_code == 200
        return html.unescape(page.text)


def _verify_page(settings: Settings, data: bytes) -> str:
    from tests.support import csrf_from

    with TestClient(create_app(replace(settings, run_worker=False)), base_url=BASE_URL) as client:
        page = client.get("/verify")
        answer = client.post(
            "/verify",
            data={"csrf_token": csrf_from(page.text)},
            files={"dossier": ("dossier.pdf", data, "application/pdf")},
        )
        assert answer.status_code == 200, answer.status_code
        return html.unescape(answer.text)


def _settings(database_url: str, tmp_path: Path, authority: TimestampAuthority) -> Settings:
    settings = make_settings(database_url, tmp_path / "data", None, timestamp_url=authority.url)
    add_endorsements(database_url, rows=[dict(organisation_name="Friedenskreis Kassel")])
    return settings


async def _build(settings: Settings) -> tuple[jobs.Built, Any]:
    db = Database(settings.database_url)
    await db.connect()
    try:
        appeal = await get_appeal(db, slug=DEMO_SLUG)
        dossier_id = await jobs.start_build(db, appeal_id=appeal["id"], country="DE", worker_id="w")
        row = await jobs.get_dossier(db, dossier_id=dossier_id)
        built = await jobs.build(db, settings, dossier=row, worker_id="w")
        return built, await jobs.get_dossier(db, dossier_id=dossier_id)
    finally:
        await db.disconnect()


async def _worker_pass(settings: Settings) -> Any:
    db = Database(settings.database_url)
    await db.connect()
    try:
        assert await jobs.DossierWorker(db, settings).run_once() is False  # nothing to build: it stamps
        [row] = await jobs.list_dossiers(db)
        return row
    finally:
        await db.disconnect()


def _signer_root(settings: Settings) -> Any:
    from asn1crypto import x509

    return x509.Certificate.load(load_certificate_der(signing_config(settings)))


async def _validate(data: bytes, settings: Settings, authority: TimestampAuthority) -> tuple[Any, list[Any]]:
    """pyHanko's status of the organiser signature, and of each document timestamp."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature, async_validate_pdf_timestamp

    reader = PdfFileReader(BytesIO(data))
    [signature] = [s for s in reader.embedded_regular_signatures]
    assert signature.field_name == SIGNATURE_FIELD
    status = await async_validate_pdf_signature(
        signature,
        signer_validation_context=authority.validation_context(_signer_root(settings)),
        ts_validation_context=authority.validation_context(),
    )
    stamps = []
    for stamp in reader.embedded_timestamp_signatures:
        assert stamp.field_name == TIMESTAMP_FIELD
        stamps.append(await async_validate_pdf_timestamp(stamp, validation_context=authority.validation_context()))
    return status, stamps


def test_with_an_authority_a_dossier_is_signed_pades_b_t(
    database_url: str, tmp_path: Path, tsa: TimestampAuthority
) -> None:
    settings = _settings(database_url, tmp_path, tsa)
    built, row = asyncio.run(_build(settings))
    assert not built.timestamp_pending and row["timestamp_pending"] is False
    data = built.path.read_bytes()
    status, stamps = asyncio.run(_validate(data, settings, tsa))
    assert status.intact and status.valid and status.trusted
    # The signature's timestamp token: from the test authority, valid and trusted.
    assert status.timestamp_validity is not None
    assert status.timestamp_validity.intact and status.timestamp_validity.valid and status.timestamp_validity.trusted
    assert stamps == []
    assert tsa.requests >= 1
    if shutil.which("pdfsig"):
        sig = pdfsig(built.path)
        assert "Signature is Valid" in sig and "Total document signed" in sig
        assert "PAdES" in sig or "ETSI.CAdES.detached" in sig


@pytest.mark.parametrize("outage", ["refused", "503"])
def test_an_unreachable_authority_issues_b_b_marked_pending_then_the_worker_stamps_it(
    database_url: str, tmp_path: Path, tsa: TimestampAuthority, outage: str
) -> None:
    settings = _settings(database_url, tmp_path, tsa)
    tsa.stop() if outage == "refused" else tsa.down()
    built, row = asyncio.run(_build(settings))
    assert row["state"] == "done" and row["timestamp_pending"] is True and built.timestamp_pending
    before = built.path.read_bytes()
    status, stamps = asyncio.run(_validate(before, settings, tsa))
    assert status.intact and status.valid and status.timestamp_validity is None and stamps == []  # B-B

    assert PENDING in _organiser_page(settings, row["id"])
    assert GERMAN_PENDING in _organiser_page(settings, row["id"], "de")

    # Still down: a worker pass leaves it as it is.
    row = asyncio.run(_worker_pass(settings))
    assert row["timestamp_pending"] is True and built.path.read_bytes() == before

    tsa.up()
    row = asyncio.run(_worker_pass(settings))
    after = built.path.read_bytes()
    assert row["timestamp_pending"] is False
    assert PENDING not in _organiser_page(settings, row["id"])
    assert row["pdf_sha256"] == hashlib.sha256(after).hexdigest() != built.pdf_sha256
    # An incremental update: the signed revision is untouched, the signature still validates.
    assert after.startswith(before)
    status, [stamp] = asyncio.run(_validate(after, settings, tsa))
    assert status.intact and status.valid and status.trusted
    assert stamp.intact and stamp.valid and stamp.trusted
    # The stamped file is the one on record: /verify calls it genuine, not "changed after signing".
    assert "Genuine and unchanged" in _verify_page(settings, after)
    if shutil.which("pdfsig"):
        # poppler lists the document timestamp (it cannot check RFC 3161 ones) after the valid signature.
        sig = pdfsig(built.path)
        first, second = sig.split("Signature #2:")
        assert "OrganiserSignature" in first and "Signature is Valid" in first
        assert f"Field Name: {TIMESTAMP_FIELD}" in second and "Total document signed" in second
