"""Signing with a configured SIGNING_P12 through the CLI, and the self-signed fallback."""

from __future__ import annotations

import asyncio
import hashlib
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from petition.cli import main
from petition.dossiers.sign import certificate_fingerprint, self_signed_path
from petition.dossiers.verify import check_signature
from tests.conftest import TEST_SECRET, make_settings
from tests.dossiers.factories import make_p12, pdfsig, pdftotext
from tests.factories import add_endorsements


def test_cli_builds_a_dossier_signed_with_the_configured_p12(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_endorsements(
        database_url,
        rows=[
            dict(organisation_name="Connection e.V."),
            dict(organisation_name="Ökumenisches Friedensnetz", city="Köln"),
            dict(organisation_name="Anonyme Gruppe", visibility="anonymous"),
        ],
    )
    p12 = tmp_path / "organisers.p12"
    cert_der = make_p12(p12, "Test Organisers Signing", "s3cret-pass")
    for name, value in {
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path / "data"),
        "SECRET_KEY": TEST_SECRET,
        "SIGNING_P12": str(p12),
        "SIGNING_P12_PASSWORD": "s3cret-pass",
        "BASE_URL": "https://petition.example",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env
    out = tmp_path / "out" / "de.pdf"
    result = CliRunner().invoke(
        main,
        ["dossier", "build", "--appeal", "protect-deserters", "--country", "de", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    # One anonymous organisation is not attributed to Germany (ANONYMOUS_COUNT_THRESHOLD).
    assert "2 named, 0 not named" in result.output
    assert "dossier protect-deserters DE" in result.output  # the progress bar's label (no TTY: no bar)

    data = out.read_bytes()
    assert re.search(r"PDF SHA-256:\s+" + hashlib.sha256(data).hexdigest(), result.output)
    check = check_signature(data, cert_der)
    assert check.signed and check.intact and check.whole_file
    assert check.signer_fingerprint == hashlib.sha256(cert_der).hexdigest()
    sig = pdfsig(out)
    assert "Signature is Valid" in sig and "Test Organisers Signing" in sig
    text = pdftotext(out)
    assert "Connection e.V." in text and "Anonyme Gruppe" not in text
    assert "https://petition.example/verify?digest=" in text.replace("\n", "")
    # The build is recorded like any other.
    rows = asyncio.run(_dossiers(database_url))
    assert [(r["state"], r["country"], r["signatory_count"], r["anonymous_count"], r["pdf_sha256"]) for r in rows] == [
        ("done", "DE", 2, 0, hashlib.sha256(data).hexdigest())
    ]
    # No self-signed certificate was made when a P12 is configured.
    assert not (tmp_path / "data" / "signing").exists()


async def _dossiers(url: str) -> list:
    from petition.db import Database
    from petition.dossiers.jobs import list_dossiers

    db = Database(url)
    await db.connect()
    try:
        return await list_dossiers(db)
    finally:
        await db.disconnect()


def test_cli_refuses_an_unknown_appeal_or_country(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    bad_country = runner.invoke(main, ["dossier", "build", "--appeal", "x", "--country", "XX", "--out", "a.pdf"])
    assert bad_country.exit_code != 0 and "not an ISO 3166-1" in bad_country.output
    bad_appeal = runner.invoke(main, ["dossier", "build", "--appeal", "nope", "--country", "DE", "--out", "a.pdf"])
    assert bad_appeal.exit_code != 0 and "no appeal with the slug" in bad_appeal.output


def test_the_self_signed_certificate_is_made_once_and_kept_private(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path / "data", None)
    first = certificate_fingerprint(settings)
    path = self_signed_path(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    mtime = path.stat().st_mtime_ns
    assert certificate_fingerprint(settings) == first
    assert path.stat().st_mtime_ns == mtime
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", first)


def test_a_wrong_p12_password_is_a_clear_error(database_url: str, tmp_path: Path) -> None:
    from petition.dossiers.sign import SigningError

    p12 = tmp_path / "o.p12"
    make_p12(p12, "X", "right")
    settings = make_settings(database_url, tmp_path / "data", None, signing_p12=str(p12), signing_p12_password="wrong")
    with pytest.raises(SigningError, match="SIGNING_P12_PASSWORD"):
        certificate_fingerprint(settings)
