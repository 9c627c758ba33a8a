"""Checkpoints of the public log get an RFC 3161 token over SHA-256 of their signed note, served
at /log/checkpoint/timestamp; with the authority unreachable they are published without it and
stamped on a later pass."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from starlette.testclient import TestClient

from petition.app import create_app
from petition.db import Database
from petition.endorsements.tables import public_record_events
from petition.settings import Settings
from petition.transparency import store, trusted_time
from petition.transparency.tables import log_checkpoints
from petition.transparency.worker import LogWorker
from tests.conftest import BASE_URL, make_settings
from tests.timestamps import TimestampAuthority, tsa

__all__ = ["tsa"]


async def _queue_leaf(db: Database, n: int) -> None:
    async with db.write():
        await db.execute(
            public_record_events.insert().values(
                entry_id=f"test{n:028d}", leaf=f'{{"test":{n}}}', created_at=dt.datetime.now(dt.UTC)
            )
        )


async def _tokens(db: Database) -> dict[int, bytes | None]:
    query = sa.select(log_checkpoints.c.size, log_checkpoints.c.timestamp_token).order_by(log_checkpoints.c.size)
    return {int(size): (None if token is None else bytes(token)) for size, token in await db.fetch_values(query)}


async def _passes(settings: Settings, authority: TimestampAuthority) -> dict[str, Any]:
    db = Database(settings.database_url)
    await db.connect()
    try:
        worker = LogWorker(db, settings)
        authority.stop()
        await _queue_leaf(db, 0)
        await worker.run_once()  # checkpoint 1 published, the authority unreachable
        published = await store.latest(db)
        down = await _tokens(db)

        authority.up()
        await _queue_leaf(db, 1)
        await worker.run_once()  # the next pass stamps the new checkpoint and the one left over
        return {"published": published, "down": down, "up": await _tokens(db)}
    finally:
        await db.disconnect()


def test_checkpoints_get_a_token_over_their_note_and_unstamped_ones_are_stamped_later(
    database_url: str, tmp_path: Path, tsa: TimestampAuthority
) -> None:
    settings = make_settings(database_url, tmp_path / "data", None, timestamp_url=tsa.url, run_worker=False)
    result = asyncio.run(_passes(settings, tsa))
    assert result["published"] is not None and result["published"].size == 1
    assert result["down"] == {1: None}
    assert set(result["up"]) == {1, 2} and all(result["up"].values())

    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        for size in (1, 2):
            note = client.get("/log/checkpoint", params={"size": size})
            assert note.status_code == 200
            reply = client.get("/log/checkpoint/timestamp", params={"size": size})
            assert reply.status_code == 200
            assert reply.headers["content-type"] == "application/timestamp-reply"
            token = _granted_token(reply.content)
            assert trusted_time.imprint_of(token) == ("sha256", hashlib.sha256(note.text.encode()).digest())
            assert asyncio.run(_valid(token, note.text.encode(), tsa))
            _openssl_verifies(tmp_path, reply.content, note.text.encode(), tsa)
        assert client.get("/log/checkpoint", params={"size": 9}).status_code == 404
        assert client.get("/log/checkpoint/timestamp", params={"size": 9}).status_code == 404
        assert client.get("/log/checkpoint/timestamp", params={"size": "x"}).status_code == 400
        assert client.get("/log/checkpoint/timestamp").status_code == 400


def test_without_timestamp_url_no_authority_is_asked(database_url: str, tmp_path: Path, tsa: TimestampAuthority):
    settings = make_settings(database_url, tmp_path / "data", None, run_worker=False)

    async def once() -> dict[int, bytes | None]:
        db = Database(settings.database_url)
        await db.connect()
        try:
            await LogWorker(db, settings).run_once()
            return await _tokens(db)
        finally:
            await db.disconnect()

    assert asyncio.run(once()) == {0: None} and tsa.requests == 0
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        response = client.get("/log/checkpoint/timestamp", params={"size": 0})
        assert response.status_code == 404 and "timestamp" in response.json()["error"]


def _granted_token(reply: bytes) -> bytes:
    from asn1crypto import tsp

    response = tsp.TimeStampResp.load(reply)
    assert response["status"]["status"].native == "granted"
    return bytes(response["time_stamp_token"].dump())


async def _valid(token: bytes, note: bytes, authority: TimestampAuthority) -> bool:
    from asn1crypto import cms
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data

    signed_data = cms.ContentInfo.load(token)["content"]
    status = await validate_tst_signed_data(
        signed_data, authority.validation_context(), lambda algorithm: hashlib.new(algorithm, note).digest()
    )
    return bool(status["intact"] and status["valid"] and status["trust_problem_indic"] is None)


def _openssl_verifies(tmp_path: Path, reply: bytes, note: bytes, authority: TimestampAuthority) -> None:
    """What docs/transparency.md tells an auditor to run, when openssl is installed."""
    if shutil.which("openssl") is None:
        return
    from asn1crypto import pem

    (tmp_path / "reply.tsr").write_bytes(reply)
    (tmp_path / "note.txt").write_bytes(note)
    (tmp_path / "root.pem").write_bytes(pem.armor("CERTIFICATE", authority.root.dump()))
    result = subprocess.run(
        ["openssl", "ts", "-verify", "-in", "reply.tsr", "-data", "note.txt", "-CAfile", "root.pem"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "Verification: OK" in result.stdout, result.stdout + result.stderr
